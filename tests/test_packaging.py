"""The wheel: built from the tree, installed into a new venv, run from another folder.

Offline on purpose: the wheel is built without build isolation (hatchling comes with
the test extras) and installed without its dependencies, which the new venv borrows
from this one through a path file. So the test proves what the wheel itself carries
(the default configuration, the stylesheet, the entry point) without a registry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(out), str(ROOT)],
        check=True, timeout=300,
    )  # fmt: skip
    (built,) = out.glob("ansim-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv holding the wheel; returns its bin directory."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=False)
    python = home / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        check=True, timeout=300,
    )  # fmt: skip
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    # A directory named in a .pth file is not a site directory, so this venv's editable
    # install of the tree (its own .pth there) stays off: `console` comes from the wheel.
    Path(site, "borrowed-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return home / "bin"


def _run_from_root(bin_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIM_", "PYTHON"))}
    return subprocess.run(
        [str(bin_dir / argv[0]), *argv[1:]],
        cwd="/", env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_wheel_carries_the_default_configuration_and_no_broker(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            line.split(":", 1)[1].strip()
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
    assert {"console/config.toml", "console/tui/app.tcss", "console/cli.py"} <= names
    assert {"widgets/alert_queue.py", "protocols/schemas.py"} <= names
    assert not any(n.startswith("tests/") for n in names)
    amqtt = [r.replace('"', "'") for r in requires if r.startswith("amqtt")]
    assert all("; extra == " in r for r in amqtt), f"amqtt is not optional: {amqtt}"
    assert any("extra == 'embedded'" in r for r in amqtt), amqtt


@pytest.mark.parametrize("command", [[], ["core"], ["console"]])
def test_help_works_from_another_folder(installed: Path, command: list[str]) -> None:
    done = _run_from_root(installed, "ansim", *command, "--help")
    assert done.returncode == 0, done.stderr
    assert "usage: ansim" in done.stdout


def test_the_installed_package_finds_its_own_configuration(installed: Path) -> None:
    done = _run_from_root(
        installed,
        "python",
        "-c",
        "import console, console.config as c; cfg = c.load(); "
        "print(console.__file__); print(c.DEFAULT_PATH); print(len(cfg.city.districts))",
    )
    assert done.returncode == 0, done.stderr
    package, config_path, districts = done.stdout.split()
    assert not package.startswith(str(ROOT)), "the tree's console shadowed the wheel's"
    assert config_path.startswith(str(installed.parent)) and config_path.endswith("config.toml")
    assert districts == "25"
