"""The authorized-keys file of `ansim ssh`: which key is which operator, in which role.

One key per line, its seat first and the OpenSSH public key after it, exactly as
``ssh-keygen`` wrote it (comment included)::

    operator=op1 role=operator districts=gangnam,mapo language=ko ssh-ed25519 AAAA... kim@mapo

``operator`` is required; ``role`` (observer, operator, supervisor) defaults to what the
configuration's ``[roles]`` grants that operator; ``districts`` (names or slugs of the
``[city]`` districts) and ``language`` are optional. Blank lines and ``#`` comments are
skipped. A bad line fails the whole file with its path, line number and why, so a typo
never silently locks someone out or lets someone in.
"""

from __future__ import annotations

import re
import stat
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from console.config import Config, ConfigError
from protocols.schemas import Role

with warnings.catch_warnings():
    # asyncssh still imports cryptography's DSA support, which warns on import.
    warnings.simplefilter("ignore")
    import asyncssh

OPTIONS = ("operator", "role", "districts", "language")
OPERATOR_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,64}\Z")  # as [operator] id
LANGUAGE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?\Z")
# Key types OpenSSH writes; a token starting so ends the options.
KEY_TYPE = re.compile(r"(?:ssh-|ecdsa-sha2-|sk-ssh-|sk-ecdsa-sha2-)[A-Za-z0-9@._-]+\Z")
FORMAT_HINT = "operator=ID [role=ROLE] [districts=a,b] [language=ko] ssh-ed25519 AAAA... comment"


class KeysFileError(ConfigError):
    """The keys file is missing or has a bad line; the message names file, line and why."""


@dataclass(frozen=True)
class SeatKey:
    """One line of the keys file: a public key and the seat it opens."""

    operator: str
    role: Role | None  # None: what [roles] grants the operator
    districts: tuple[str, ...]
    language: str
    key: asyncssh.SSHKey
    fingerprint: str  # "SHA256:...", as `ssh-keygen -l` prints it
    comment: str
    line: int

    def role_in(self, cfg: Config) -> Role:
        return self.role if self.role is not None else cfg.role_of(self.operator)


class SeatKeys:
    """The parsed file: keys looked up by their public blob."""

    def __init__(self, path: Path, entries: Iterable[SeatKey]) -> None:
        self.path = path
        self.entries = tuple(entries)
        self._by_blob = {entry.key.public_data: entry for entry in self.entries}

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, key: asyncssh.SSHKey) -> SeatKey | None:
        return self._by_blob.get(key.public_data)

    def fingerprints(self) -> frozenset[str]:
        return frozenset(entry.fingerprint for entry in self.entries)


def district_names(cfg: Config) -> dict[str, str]:
    """Each district's slug and name (lower case) -> its name (as in topics and [scopes]),
    for the districts option."""
    names: dict[str, str] = {}
    for district in cfg.city.districts:
        names[district.slug.lower()] = district.name
        names[district.name.lower()] = district.name
    return names


def load_keys(path: Path, districts: Mapping[str, str]) -> SeatKeys:
    """Read and check the whole file; a missing file or any bad line raises KeysFileError."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is no key
    except FileNotFoundError:
        raise KeysFileError(
            f"{path}: no such keys file ([ssh] keys); make it with one line per key: {FORMAT_HINT}"
        ) from None
    except UnicodeDecodeError:
        raise KeysFileError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise KeysFileError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_keys(path, text, districts)


def parse_keys(path: Path, text: str, districts: Mapping[str, str]) -> SeatKeys:
    entries: list[SeatKey] = []
    seen: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            entry = _parse_line(line, number, districts)
        except ValueError as exc:
            raise KeysFileError(f"{path}:{number}: {exc}") from None
        blob = entry.key.public_data
        if blob in seen:
            raise KeysFileError(
                f"{path}:{number}: the same key as line {seen[blob]} ({entry.fingerprint}); "
                "a key opens one seat"
            )
        seen[blob] = number
        entries.append(entry)
    return SeatKeys(path, entries)


def _parse_line(line: str, number: int, districts: Mapping[str, str]) -> SeatKey:
    tokens = line.split()
    options: dict[str, str] = {}
    index = 0
    while index < len(tokens) and not KEY_TYPE.match(tokens[index]):
        name, equals, value = tokens[index].partition("=")
        if not equals:
            raise ValueError(
                f"{tokens[index][:40]!r} is neither an option (name=value) nor a key type "
                f"(ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...); expected {FORMAT_HINT}"
            )
        if name not in OPTIONS:
            raise ValueError(f"unknown option {name[:40]!r} (known: {', '.join(OPTIONS)})")
        if name in options:
            raise ValueError(f"option {name!r} given twice")
        options[name] = value
        index += 1
    if index >= len(tokens):
        raise ValueError(f"no public key after the options; expected {FORMAT_HINT}")
    key_type = tokens[index]
    if "-cert-" in key_type:
        raise ValueError(f"{key_type}: certificates are not supported; give the plain key")
    if index + 1 >= len(tokens):
        raise ValueError(f"{key_type}: the key's base64 data is missing")
    try:
        key = asyncssh.import_public_key(f"{key_type} {tokens[index + 1]}")
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"{key_type}: not a valid public key ({exc})") from None
    if key.get_algorithm() != key_type:
        raise ValueError(f"the key's data is a {key.get_algorithm()} key, not {key_type}")
    return SeatKey(
        operator=_operator(options),
        role=_role(options),
        districts=_districts(options, districts),
        language=_language(options),
        key=key,
        fingerprint=key.get_fingerprint("sha256"),
        comment=" ".join(tokens[index + 2 :]),
        line=number,
    )


def _operator(options: Mapping[str, str]) -> str:
    operator = options.get("operator")
    if operator is None:
        raise ValueError(f"operator=ID is missing; expected {FORMAT_HINT}")
    if not OPERATOR_ID.match(operator):
        raise ValueError(
            f"operator {operator[:70]!r}: 1 to 64 of the characters A-Z a-z 0-9 _ . : @ -"
        )
    return operator


def _role(options: Mapping[str, str]) -> Role | None:
    value = options.get("role")
    if value is None:
        return None
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise ValueError(f"role {value[:40]!r}: expected one of {known}") from None


def _districts(options: Mapping[str, str], known: Mapping[str, str]) -> tuple[str, ...]:
    value = options.get("districts")
    if value is None:
        return ()
    names: list[str] = []
    for name in value.split(","):
        found = known.get(name.strip().lower())
        if not name.strip():
            raise ValueError(f"districts {value[:80]!r}: an empty name (a stray comma?)")
        if found is None:
            raise ValueError(
                f"districts: {name[:40]!r} is no district of [city] (a name or slug, "
                f"e.g. {', '.join(sorted(set(known.values()))[:3])})"
            )
        if found not in names:
            names.append(found)
    return tuple(names)


def _language(options: Mapping[str, str]) -> str:
    value = options.get("language", "")
    if value and not LANGUAGE.match(value):
        raise ValueError(f"language {value[:20]!r}: a language code such as ko or en")
    return value


def role_disagreements(keys: SeatKeys, cfg: Config) -> list[str]:
    """A sentence per line whose role differs from the one the core grants ([roles])."""
    found = []
    for entry in keys.entries:
        granted = cfg.role_of(entry.operator)
        if entry.role is not None and entry.role != granted:
            found.append(
                f"{keys.path}:{entry.line}: operator {entry.operator} has role "
                f"{entry.role.value} here, but the core grants {granted.value} ([roles]); "
                "the core decides, the console only shows this one"
            )
    return found


def loose_permissions(path: Path) -> str | None:
    """Why the keys file is unsafe (writable by others than its owner), or None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"{path}: writable by group or others (mode {stat.S_IMODE(mode):04o}): anyone "
            "who can write it can give themselves a seat; chmod go-w"
        )
    return None
