"""Reading a configuration file: TOML, ANSIM_* overrides, validation, and errors that
name the file, the line and the key."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import msgspec
from msgspec import Struct

from console.config.model import Config
from console.config.sections import DEFAULT_PATH, ConfigError

ENV_PREFIX = "ANSIM_"

# Keys that once existed, with why they are gone: a file that still sets one fails at
# start with that reason instead of a bare "unknown key".
REMOVED_KEYS: dict[tuple[str, str], str] = {
    ("core", "shared_subscription"): (
        "removed: two cores on one shared subscription numbered incidents alike, so a "
        "command reached two different incidents, and each lacked the other's cameras "
        "and SOS; several cores come back as partitions by district (docs/performance.md)"
    ),
}


# First-come ownership is the memory of one core (its journaled state): with several
# partitions each core decides "first" alone, so an id one source registered in one
# partition could be claimed by another source in the next (docs/partitions.md, "Owners").
FIRST_COME_ACROSS_PARTITIONS = (
    "a city of several partitions cannot tell which source came first across its cores; "
    "name who owns each camera, unit and CAP sender id in [owners.cameras], "
    "[owners.responders], [owners.senders] and set first_come = false"
)


# --- loading -----------------------------------------------------------------------

_PATH_IN_ERROR = re.compile(r" - at `\$((?:\.[^.`\[]+|\[\d+\])*)`$")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `([^`]+)`")


def load(
    path: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None
) -> Config:
    """Read ``path`` (default: the top-level config.toml), apply ANSIM_* overrides, validate."""
    file = Path(path) if path is not None else DEFAULT_PATH
    env = os.environ if environ is None else environ
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such configuration file") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    owners = raw.get("owners")
    first_come_in_file = isinstance(owners, dict) and "first_come" in owners
    overridden = _apply_env(raw, env)
    for (section, key), why in REMOVED_KEYS.items():
        if key in raw.get(section, {}):
            where = overridden.get((section, key))
            line = _line_of(text, section, key)
            at = where or (f"{file}, line {line}" if line else str(file))
            raise ConfigError(f"{at}: [{section}] {key}: {why}")
    try:
        cfg = msgspec.convert(raw, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(file, text, str(exc), overridden)) from None
    _check_districts(cfg, file, text)
    _check_owners(cfg, file, text, first_come_in_file, overridden)
    return cfg


def _check_districts(cfg: Config, file: Path, text: str) -> None:
    """[partitions] and [scopes] name districts of [city], each in one partition."""
    try:
        cfg.partition_map()
    except ValueError as exc:
        name = str(exc).partition(":")[0]
        line = _line_of(text, "partitions", name)
        raise ConfigError(f"{file}:{line or '?'}: [partitions] {exc}") from None
    known = {d.name for d in cfg.city.districts}
    for operator, districts in cfg.scopes.items():
        unknown = [d for d in districts if d not in known]
        if unknown:
            line = _line_of(text, "scopes", operator)
            raise ConfigError(
                f"{file}:{line or '?'}: [scopes] {operator}: no district named "
                f"{unknown[0]!r} in [city]"
            )
    if cfg.core.partition and cfg.core.partition not in cfg.partition_map():
        line = _line_of(text, "core", "partition")
        raise ConfigError(
            f"{file}:{line or '?'}: [core] partition: no partition {cfg.core.partition!r}"
        )


def _check_owners(
    cfg: Config,
    file: Path,
    text: str,
    first_come_in_file: bool,
    overridden: dict[tuple[str, str], str],
) -> None:
    """Several partitions need [owners] named, not first come; the error points at the
    line that sets first_come, else at [partitions] (what made first come unsafe)."""
    if not cfg.owners.first_come or len(cfg.partition_map().names) < 2:
        return
    where = overridden.get(("owners", "first_come"))
    if where is None and first_come_in_file:
        where = f"{file}:{_line_of(text, 'owners', 'first_come') or '?'}"
    if where is None:
        line = _line_of(text, "partitions", "")
        by_env = sorted(
            name for (section, _), name in overridden.items() if section == "partitions"
        )
        where = by_env[0] if by_env and not line else f"{file}:{line or '?'}"
    raise ConfigError(f"{where}: [owners] first_come: {FIRST_COME_ACROSS_PARTITIONS}")


def _apply_env(raw: dict[str, Any], env: Any) -> dict[tuple[str, str], str]:
    """Set ``raw[section][key]`` from ANSIM_SECTION__KEY; return which keys came from where."""
    sources: dict[tuple[str, str], str] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].partition("__")
        section, key = section.lower(), key.lower()
        if section not in {f.encode_name for f in msgspec.structs.fields(Config)}:
            raise ConfigError(f"{name}: no configuration section [{section}]")
        fields = _fields_of(section)
        if key not in fields and key.replace("_", "-") in fields:
            key = key.replace("_", "-")
        if key not in fields and (section, key) not in REMOVED_KEYS:
            raise ConfigError(f"{name}: section [{section}] has no key '{key}'")
        raw.setdefault(section, {})[key] = _parse_env_value(value)
        sources[(section, key)] = name
    return sources


def _fields_of(section: str) -> set[str]:
    section_type = {f.encode_name: f.type for f in msgspec.structs.fields(Config)}[section]
    if not (isinstance(section_type, type) and issubclass(section_type, Struct)):
        return _ANY_KEY  # a free table such as [roles]
    return {f.encode_name for f in msgspec.structs.fields(section_type)}


class _AnyKey(set[str]):
    def __contains__(self, item: object) -> bool:
        return True


_ANY_KEY = _AnyKey()


def _parse_env_value(value: str) -> Any:
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _explain(file: Path, text: str, message: str, overridden: dict[tuple[str, str], str]) -> str:
    """Turn msgspec's 'Expected X - at `$.a.b`' into 'file:line: [a] b: expected X'."""
    match = _PATH_IN_ERROR.search(message)
    what = _PATH_IN_ERROR.sub("", message)
    parts = [p for p in (match.group(1).split(".") if match else []) if p]
    unknown = _UNKNOWN_FIELD.search(what)
    if unknown:
        parts.append(unknown.group(1))
        what = "unknown key (a typo?)"
    else:
        what = what[:1].lower() + what[1:]
    section = parts[0] if parts else ""
    key = parts[1].split("[")[0] if len(parts) > 1 else ""
    if (section, key) in overridden:
        return f"{overridden[(section, key)]}: [{section}] {key}: {what}"
    line = _line_of(text, section, key)
    where = f"{file}:{line}" if line else str(file)
    label = f"[{section}] {key}".strip() if section else "top level"
    return f"{where}: {label}: {what}"


def _line_of(text: str, section: str, key: str) -> int | None:
    """The line that sets ``key`` in ``[section]`` (or the section header)."""
    current = ""
    header_line: int | None = None
    key_pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*=") if key else None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("[") and not stripped.startswith("[["):
            current = stripped.strip("[]").strip()
            if current == section:
                header_line = number
            continue
        if current == section and key_pattern and key_pattern.match(line):
            return number
    return header_line
