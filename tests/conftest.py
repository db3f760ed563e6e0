import os

import pytest

from support.http import FixtureServer

# Nothing in the test run may reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def http_server():
    server = FixtureServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory):
    """One cache folder for the whole run: the model is exported there at most once."""
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch, _session_cache):
    """No test reads the developer's own config or writes into their data or cache folders."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(_session_cache))
    for key in list(os.environ):
        if key.startswith("RQ_"):
            monkeypatch.delenv(key)
    # Most tests run the exact sentence-transformers path, so each one does not pay a
    # 6-10 s ONNX export of the model; tests/test_onnx_path.py runs the default (onnx) path
    # end to end, and tests/test_onnx_embed.py checks the two agree.
    monkeypatch.setenv("RQ_EMBED_BACKEND", "torch")


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 from the installed package, loaded once per test session."""
    from rq.index.encoders.torch_encoder import Embedder

    model = Embedder("all-MiniLM-L6-v2")
    model.encode(["load the weights now"])
    return model
