"""`ansim --help` explains itself; a bad config is a sentence, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console import cli


def run_ansim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_every_command() -> None:
    result = run_ansim("--help")
    assert result.returncode == 0
    for command in cli.COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_each_subcommand_has_help(command: str) -> None:
    result = run_ansim(command, "--help")
    assert result.returncode == 0, result.stderr
    assert cli.COMMANDS[command][1].split(":")[0] in result.stdout


def test_bad_config_is_reported_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[broker]\nport = -1\n", encoding="utf-8")
    result = run_ansim("--config", str(bad), "core", "--help")
    # --help exits before the config is read; a real run must fail on it
    assert result.returncode == 0
    result = run_ansim("--config", str(bad), "simulate", "--duration", "0.1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:2: [broker] port: expected `int` >= 1" in result.stderr
