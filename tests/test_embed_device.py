"""embed_device: auto and cpu change nothing on a machine without a GPU; cuda asked for there
falls back to the CPU with a one-line notice; a bad value is refused when Settings is built."""

from pathlib import Path

import pytest

from rq.errors import ConfigError
from rq.index.encoders.factory import embed_device
from rq.settings import Settings

pytestmark = pytest.mark.skipif(Path("/dev/nvidiactl").exists(), reason="this machine has an NVIDIA GPU")


def test_cuda_without_a_gpu_falls_back_to_the_cpu_and_says_so():
    said = []
    assert embed_device(Settings(embed_device="cuda"), said.append) == "cpu"
    assert len(said) == 1 and "no CUDA GPU" in said[0] and "\n" not in said[0]


@pytest.mark.parametrize("value", ["auto", "cpu"])
def test_auto_and_cpu_pick_the_cpu_silently(value):
    said = []
    assert embed_device(Settings(embed_device=value), said.append) == "cpu"
    assert said == []


def test_a_bad_value_is_a_config_error():
    with pytest.raises(ConfigError, match="embed_device"):
        Settings(embed_device="tpu")


def test_a_bad_value_on_the_command_line_is_one_line_and_exit_2(monkeypatch, capsys):
    import subprocess
    import sys

    env = {"RQ_EMBED_DEVICE": "tpu", "PYTHONPATH": str(Path(__file__).parents[1] / "src"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "rq", "status"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "embed_device" in done.stderr
