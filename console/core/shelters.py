"""Where the core's safe shelters come from: a JSON list of shelters, or none.

The training city's shelters are the simulator's; the all-in-one launcher
(console.local) writes them to a file and points the core at it, so the
production core never builds, or imports, the simulated city.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from console.config import Config, ConfigError
from protocols.schemas import Shelter


def load(cfg: Config) -> list[Shelter]:
    source = cfg.core.shelters
    if not source:
        return []
    path = Path(source)
    try:
        return msgspec.json.decode(path.read_bytes(), type=list[Shelter])
    except FileNotFoundError:
        hint = (
            ' ("simulated" is now written by the all-in-one `ansim`; give a file, or "" for none)'
            if source == "simulated"
            else ""
        )
        raise ConfigError(f"[core] shelters: no such file: {path}{hint}") from None
    except OSError as exc:
        raise ConfigError(f"[core] shelters: cannot read {path}: {exc.strerror}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"[core] shelters: {path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"[core] shelters: {path}: not JSON: {exc}") from None
