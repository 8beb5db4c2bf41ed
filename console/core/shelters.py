"""Where the core's safe shelters come from: the training city, or a JSON file."""

from __future__ import annotations

from pathlib import Path

import msgspec

from console.config import Config, ConfigError
from protocols.schemas import Shelter


def load(cfg: Config) -> list[Shelter]:
    source = cfg.core.shelters
    if source == "simulated":
        from console.sim.city import build_city

        sim = cfg.simulate
        return list(build_city(sim.seed, 0, 0, sim.shelters).shelters)
    path = Path(source)
    try:
        return msgspec.json.decode(path.read_bytes(), type=list[Shelter])
    except OSError as exc:
        raise ConfigError(f"[core] shelters: cannot read {path}: {exc.strerror}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"[core] shelters: {path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"[core] shelters: {path}: not JSON: {exc}") from None
