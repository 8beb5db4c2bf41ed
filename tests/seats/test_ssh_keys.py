"""The keys file of `ansim ssh`: each line a key and its seat; a bad line names file and line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from console import config as config_module
from console.seats.ssh_keys import (
    KeysFileError,
    district_names,
    load_keys,
    parse_keys,
    role_disagreements,
)
from console.seats.ssh_server import base_folder, host_key
from protocols.schemas import Role
from tests.seats.ssh_client import fingerprint, make_key, needs_ssh, seat_config

pytestmark = needs_ssh
DISTRICTS = district_names(config_module.Config())


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Path, str]]:
    folder = tmp_path_factory.mktemp("keys")
    return [make_key(folder, f"k{n}") for n in range(2)]


def parse(text: str) -> object:
    return parse_keys(Path("/etc/ansim/keys"), text, DISTRICTS)


def test_a_line_maps_its_key_to_operator_role_districts_and_language(
    keys: list[tuple[Path, str]],
) -> None:
    (path0, pub0), (_, pub1) = keys
    text = (
        "# Mapo office\n\n"
        f"operator=op1 role=supervisor districts=mapo,Gangnam-gu language=ko {pub0}\n"
        f"  operator=watch1 {pub1}\n"
    )
    parsed = parse_keys(Path("k"), text, DISTRICTS)
    first, second = parsed.entries
    assert (first.operator, first.role, first.districts, first.language, first.line) == (
        "op1", Role.SUPERVISOR, ("Mapo-gu", "Gangnam-gu"), "ko", 3,
    )  # fmt: skip
    assert first.fingerprint == fingerprint(path0)
    assert first.comment == "k0@test"
    assert (second.operator, second.role, second.districts, second.language) == (
        "watch1", None, (), "",
    )  # fmt: skip
    cfg = config_module.Config()
    assert second.role_in(cfg) is Role.OBSERVER  # no role=: what [roles] grants
    assert parsed.lookup(first.key) is first


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("role=operator {pub}", "operator=ID is missing"),
        ("operator=op1 colour=red {pub}", "unknown option 'colour'"),
        ("operator=op1 operator=op2 {pub}", "option 'operator' given twice"),
        ("operator=op1 role=admin {pub}", "role 'admin': expected one of"),
        ("operator=op1 districts=atlantis {pub}", "'atlantis' is no district of [city]"),
        ("operator=op1 districts=mapo,,jung {pub}", "an empty name"),
        ("operator=op1 language=korean! {pub}", "a language code"),
        ("operator='op 1' {pub}", "neither an option"),
        ("operator=op/1 {pub}", "operator 'op/1': 1 to 64"),
        ("operator=op1", "no public key after the options"),
        ("operator=op1 ssh-ed25519", "base64 data is missing"),
        ("operator=op1 ssh-ed25519 AAAAnotbase64", "not a valid public key"),
        ("{pub}", "operator=ID is missing"),
    ],
)
def test_a_bad_line_names_file_line_and_why(
    keys: list[tuple[Path, str]], line: str, why: str
) -> None:
    pub = keys[0][1]
    with pytest.raises(KeysFileError) as caught:
        parse("# a comment\n" + line.format(pub=pub) + "\n")
    assert str(caught.value).startswith("/etc/ansim/keys:2: ")
    assert why in str(caught.value)


def test_the_same_key_twice_is_refused(keys: list[tuple[Path, str]]) -> None:
    pub = keys[0][1]
    with pytest.raises(KeysFileError, match=r"keys:3: the same key as line 1"):
        parse(f"operator=op1 {pub}\n\noperator=op2 {pub}\n")


def test_a_key_of_another_type_than_it_says_is_refused(keys: list[tuple[Path, str]]) -> None:
    data = keys[0][1].split()[1]
    with pytest.raises(KeysFileError, match=r"not a valid public key|not ssh-rsa"):
        parse(f"operator=op1 ssh-rsa {data}\n")


def test_a_missing_file_says_what_to_put_in_it(tmp_path: Path) -> None:
    with pytest.raises(KeysFileError, match=r"no such keys file .*operator=ID"):
        load_keys(tmp_path / "nothing", DISTRICTS)


def test_a_role_the_core_would_not_grant_is_reported(keys: list[tuple[Path, str]]) -> None:
    (_, pub0), (_, pub1) = keys
    parsed = parse(f"operator=op1 role=supervisor {pub0}\noperator=sup1 role=supervisor {pub1}\n")
    [sentence] = role_disagreements(parsed, config_module.Config())  # type: ignore[arg-type]
    assert sentence.startswith("/etc/ansim/keys:1: operator op1 has role supervisor")
    assert "grants operator ([roles])" in sentence


def test_relative_paths_are_from_the_config_files_folder(tmp_path: Path) -> None:
    assert base_folder(tmp_path / "ansim.toml") == tmp_path
    assert base_folder(None) == Path.cwd()
    assert base_folder(config_module.DEFAULT_PATH) == Path.cwd()


def test_the_host_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "ssh" / "host_ed25519"
    made = host_key(path)
    assert made.get_algorithm() == "ssh-ed25519"
    assert path.stat().st_mode & 0o777 == 0o600
    assert host_key(path).public_data == made.public_data  # the same key on the next start
    path.chmod(0o644)
    with pytest.raises(config_module.ConfigError, match="open to others"):
        host_key(path)


def test_ansim_ssh_with_a_bad_keys_file_fails_at_start_naming_file_and_line(
    tmp_path: Path, keys: list[tuple[Path, str]]
) -> None:
    keys_file = tmp_path / "authorized_keys"
    keys_file.write_text(f"operator=op1 {keys[0][1]}\noperator=op2 role=boss {keys[1][1]}\n")
    config = seat_config(tmp_path, 1883)
    done = subprocess.run(
        [sys.executable, "-m", "console.cli", "--config", str(config), "ssh"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert f"{keys_file}:2: role 'boss': expected one of" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "ssh").exists()  # nothing made before the keys were checked
