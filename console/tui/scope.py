"""The districts a seat shows: its operator's [scopes], or fewer (`--districts`)."""

from __future__ import annotations

import msgspec

from console.config import Config, ConfigError


def narrowed(cfg: Config, operator: str, districts: list[str]) -> Config:
    """``cfg`` with ``operator`` seeing only ``districts``: a seat narrower than its
    [scopes] (an office key of `ansim ssh`), never wider (ConfigError)."""
    known = {d.name for d in cfg.city.districts}
    unknown = [d for d in districts if d not in known]
    if unknown:
        raise ConfigError(f"--districts: no district named {unknown[0]!r} in [city]")
    scope = cfg.scope_of(operator)
    if scope is not None and not set(districts) <= scope:
        outside = sorted(set(districts) - scope)
        raise ConfigError(
            f"--districts: {operator} has no right to {', '.join(outside)} ([scopes])"
        )
    return msgspec.structs.replace(cfg, scopes={**cfg.scopes, operator: districts})
