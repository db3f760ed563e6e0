from pathlib import Path

import pytest

from rq.errors import ConfigError
from rq.settings import Settings, load_settings


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


@pytest.mark.parametrize("name, bad, allowed", [
    ("fusion", "bogus", "one of convex, rrf"),
    ("fusion_norm", "max", "one of tmm, minmax, zscore"),
    ("vector_index", "annoy", "one of auto, flat, hnsw"),
    ("embed_backend", "cuda", "one of onnx, torch"),
    ("embed_bulk", "fp16", "one of int8, fp32"),
    ("recommend_method", "svm+knn", "one of centroid, maxsim, contrast, svm, or several joined by '+'"),
    ("hybrid_alpha", "1.5", "a number from 0 to 1"),
    ("mmr_lambda", "-0.1", "a number from 0 to 1"),
    ("fetch_concurrency", "0", "a whole number of at least 1"),
    ("total_timeout", "0", "a number above 0"),
    ("retries", "-1", "a whole number of at least 0"),
    ("read_half_life_days", "nan", "a number above 0"),
])
def test_a_bad_value_names_the_setting_the_value_its_source_and_what_would_do(name, bad, allowed):
    key = f"RQ_{name.upper()}"
    with pytest.raises(ConfigError) as caught:
        load_settings(env={key: bad}, cwd=Path("/nonexistent"))
    message = str(caught.value)
    assert message.startswith(f"setting {name}: cannot use ")
    shown = message.split("cannot use ", 1)[1].split(" (")[0].strip("'")
    assert shown == bad or float(shown) == float(bad)
    assert allowed in message and f"environment variable {key}" in message
    assert "\n" not in message


def test_the_source_of_a_bad_value_is_the_file_or_flag_that_gave_it(tmp_path):
    config = tmp_path / "rq.toml"
    config.write_text('fusion = "weighted"\n')
    with pytest.raises(ConfigError, match=f"fusion: cannot use 'weighted'.*from {config}"):
        load_settings(env={"RQ_CONFIG": str(config), "XDG_CONFIG_HOME": str(tmp_path)}, cwd=tmp_path)
    with pytest.raises(ConfigError, match="vector_index: cannot use 'annoy'.*from flag --vector-index"):
        load_settings({"vector_index": "annoy"}, env={}, cwd=tmp_path)
    # A value fixed in a later layer is not an error: the flag wins over the bad file.
    assert load_settings({"fusion": "rrf"}, env={"RQ_CONFIG": str(config), "XDG_CONFIG_HOME": str(tmp_path)},
                         cwd=tmp_path).fusion == "rrf"


def test_settings_built_in_code_are_checked_too():
    with pytest.raises(ConfigError, match="hybrid_alpha"):
        Settings(hybrid_alpha=2.0)
    with pytest.raises(ConfigError, match="chunk_overlap_words"):
        load_settings(env={"RQ_CHUNK_WORDS": "32", "RQ_CHUNK_OVERLAP_WORDS": "32"}, cwd=Path("/nonexistent"))


def test_the_sample_config_names_every_setting_and_its_choices():
    from dataclasses import fields

    from rq.settings import RULES, Choice

    sample = (Path(__file__).resolve().parents[1] / "configs" / "rq.toml").read_text()
    for f in fields(Settings):
        assert f"# {f.name} = " in sample, f"configs/rq.toml does not mention {f.name}"
        rule = RULES.get(f.name)
        if isinstance(rule, Choice):
            line = next(line for line in sample.splitlines() if line.startswith(f"# {f.name} = "))
            assert all(value in line for value in rule.values), line


def test_a_chunk_size_below_the_default_overlap_is_caught_and_blamed_on_its_source():
    with pytest.raises(ConfigError, match="chunk_overlap_words: cannot use 32 .*chunk_words, 16; "
                                          "from environment variable RQ_CHUNK_WORDS"):
        load_settings(env={"RQ_CHUNK_WORDS": "16"}, cwd=Path("/nonexistent"))
    assert load_settings(env={"RQ_CHUNK_WORDS": "64", "RQ_CHUNK_OVERLAP_WORDS": "10"},
                         cwd=Path("/nonexistent")).chunk_overlap_words == 10


def test_the_soft_404_probe_is_on_by_default_and_can_be_turned_off():
    assert load_settings(env={}, cwd=Path("/nonexistent")).probe_soft_404 is True
    assert load_settings(env={"RQ_PROBE_SOFT_404": "off"}, cwd=Path("/nonexistent")).probe_soft_404 is False
    with pytest.raises(ConfigError, match="probe_soft_404: cannot use 'sometimes' .true or false"):
        load_settings(env={"RQ_PROBE_SOFT_404": "sometimes"}, cwd=Path("/nonexistent"))
