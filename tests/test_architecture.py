"""The shape of the code (docs/architecture.md): import rules, module sizes."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "rq"
MAX_LINES = 400
# Modules allowed past MAX_LINES, each with the reason it stays whole.
LONGER: dict[str, str] = {}


def _lint_imports(src_parent: Path, config: Path, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("lint-imports")
    if not script.exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {"PATH": str(script.parent), "PYTHONPATH": str(src_parent), "HOME": str(cwd)}
    return subprocess.run([str(script), "--config", str(config), "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold(tmp_path):
    result = _lint_imports(ROOT / "src", ROOT / "pyproject.toml", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module, forbidden", [
    ("rank/search.py", "import rq.fetch.client"),  # a query reaching the network
    ("queue/parse.py", "import rq.archive.db"),  # the queue model knowing the archive
    ("extract/__init__.py", "import rq.archive.db"),  # extraction touching the archive
    ("archive/db.py", "import rq.cli.app"),  # anything importing the command line
    ("index/build.py", "import rq.ingest.pipeline"),  # the index reaching ingestion
])
def test_a_forbidden_import_breaks_the_contracts(tmp_path, module, forbidden):
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy / "rq", ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "rq" / module
    target.write_text(target.read_text() + f"\n{forbidden}  # planted by the test\n")
    result = _lint_imports(copy, ROOT / "pyproject.toml", tmp_path)
    assert result.returncode != 0, result.stdout
    assert "BROKEN" in result.stdout


def test_no_module_is_over_400_lines():
    long = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and rel not in LONGER:
            long[rel] = lines
    assert not long, f"modules over {MAX_LINES} lines: {long} (split them, or say why in LONGER)"


def test_every_part_is_a_package_named_in_the_architecture_page():
    page = (ROOT / "docs" / "architecture.md").read_text()
    parts = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())
    assert parts == ["archive", "cli", "extract", "fetch", "index", "ingest", "queue", "rank", "report", "serve"]
    for part in parts:
        assert f"`{part}/`" in page, f"docs/architecture.md does not describe rq/{part}/"
    loose = sorted(p.name for p in SRC.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "cluster.py", "errors.py", "files.py", "paths.py", "settings.py",
                     "threads.py", "words.py"]


def test_the_architecture_page_names_every_module():
    page = (ROOT / "docs" / "architecture.md").read_text()
    missing = [p.relative_to(SRC).as_posix() for p in sorted(SRC.rglob("*.py"))
               if p.name not in ("__init__.py", "__main__.py") and p.name not in page]
    assert not missing, f"docs/architecture.md does not mention {missing}"

