"""The all-in-one hands the core the training city's shelters as a file.

The core reads shelters from a JSON file or has none; it never builds the
simulated city, so a production core carries no simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from console.config import Config, ConfigError, CoreConfig, SimulateConfig
from console.core import shelters
from console.local import allinone
from console.sim.city import build_city


def test_the_core_reads_what_the_all_in_one_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = Config(simulate=SimulateConfig(seed=11, shelters=40))
    path = allinone.write_training_shelters(cfg)
    assert path.resolve() == (tmp_path / "var" / "shelters.json").resolve()
    loaded = shelters.load(Config(core=CoreConfig(shelters=str(path))))
    assert loaded == list(build_city(11, 0, 0, 40).shelters)
    assert len(loaded) == 40


def test_the_core_child_is_pointed_at_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    children = {c.name: c for c in allinone.build(_Args(), Config()).children}
    assert children["core"].env == {"ANSIM_CORE__SHELTERS": str(Path("var/shelters.json"))}
    assert children["simulator"].env == {}
    configured = Config(core=CoreConfig(shelters="/srv/shelters.json"))
    children = {c.name: c for c in allinone.build(_Args(), configured).children}
    assert children["core"].env == {}, "a configured list is the operator's choice"


def test_no_shelters_by_default_and_a_clear_error_for_a_missing_file(tmp_path: Path) -> None:
    assert shelters.load(Config()) == []
    with pytest.raises(ConfigError, match=r"no such file: simulated \(\"simulated\" is now"):
        shelters.load(Config(core=CoreConfig(shelters="simulated")))
    missing = tmp_path / "none.json"
    with pytest.raises(ConfigError, match=f"no such file: {missing}$"):
        shelters.load(Config(core=CoreConfig(shelters=str(missing))))


class _Args:
    config = None
