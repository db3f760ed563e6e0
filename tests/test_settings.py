from pathlib import Path

import pytest

from rq.errors import ConfigError
from rq.settings import load_settings


def test_layers_flags_beat_env_beat_toml_beat_defaults(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "rq.toml").write_text(
        '[rq]\nfetch_concurrency = 3\nretries = 5\nqueue = "q.md"\nallow_hosts = ["a.example"]\n')
    env = {"RQ_RETRIES": "1", "RQ_ALLOW_PRIVATE": "yes", "XDG_CONFIG_HOME": str(tmp_path / "none")}
    s = load_settings({"fetch_concurrency": 7, "index": None}, env=env, cwd=tmp_path)
    assert s.fetch_concurrency == 7  # flag
    assert s.retries == 1  # env beats toml
    assert s.allow_private is True
    assert s.allow_hosts == ("a.example",)
    assert s.queue == (tmp_path / "configs" / "q.md").resolve()  # relative to the file that says it
    assert s.max_redirects == 5  # default


def test_user_config_and_rq_config_file(tmp_path):
    xdg = tmp_path / "xdg"
    (xdg / "rq").mkdir(parents=True)
    (xdg / "rq" / "config.toml").write_text("freshness_days = 2\nretries = 4\n")
    named = tmp_path / "named.toml"
    named.write_text("retries = 0\n")
    s = load_settings(env={"XDG_CONFIG_HOME": str(xdg), "RQ_CONFIG": str(named)}, cwd=tmp_path)
    assert (s.freshness_days, s.retries) == (2.0, 0)


@pytest.mark.parametrize("content, message", [
    ("nonsense = 1\n", "unknown setting"),
    ("retries = 'many'\n", "cannot use"),
    ("retries = \n", "not valid TOML"),
])
def test_bad_config_is_a_clear_usage_error(tmp_path, content, message):
    path = tmp_path / "bad.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(env={"RQ_CONFIG": str(path), "XDG_CONFIG_HOME": str(tmp_path)}, cwd=tmp_path)


def test_missing_named_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(env={"RQ_CONFIG": str(tmp_path / "missing.toml"), "XDG_CONFIG_HOME": str(tmp_path)},
                      cwd=tmp_path)


def test_bad_env_value_is_reported():
    with pytest.raises(ConfigError, match="fetch_concurrency"):
        load_settings(env={"RQ_FETCH_CONCURRENCY": "lots"}, cwd=Path("/nonexistent"))
