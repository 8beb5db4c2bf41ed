"""The layer contracts hold, and a deliberate bad import breaks them.

lint-imports runs on a copy of the three packages with one import added, so the
test proves that each contract in pyproject.toml would catch what it names.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.slow


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(tree / "pyproject.toml"), "--no-cache"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    for package in ("console", "widgets", "protocols"):
        shutil.copytree(
            ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


def test_the_tree_keeps_its_contracts(tmp_path: Path) -> None:
    done = _lint(_copy(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("module", "bad_import", "broken"),
    [
        ("console/tui/app.py", "import console.core.service", "thin client"),
        ("console/engine/model.py", "import console.config", "The engine is pure"),
        ("console/engine/model.py", "import asyncio", "The engine is pure"),
        ("console/core/service.py", "import console.sim.city", "simulated city"),
        ("console/journal/store.py", "import console.core.rebuild", "Inside console"),
        ("protocols/codec.py", "import widgets.format", "console above widgets"),
    ],
)
def test_a_bad_import_breaks_its_contract(
    tmp_path: Path, module: str, bad_import: str, broken: str
) -> None:
    tree = _copy(tmp_path)
    path = tree / module
    path.write_text(path.read_text() + f"\n{bad_import}  # noqa\n")
    done = _lint(tree)
    assert done.returncode != 0
    assert broken in done.stdout and "BROKEN" in done.stdout, done.stdout
