"""The configuration: defaults load, bad files and bad overrides are named precisely."""

from __future__ import annotations

from pathlib import Path

import pytest

from console import config
from console.sim.seoul import HAN_NORTH, HAN_SOUTH


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ansim.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_default_file_loads_and_matches_struct_defaults() -> None:
    loaded = config.load(environ={})
    assert loaded == config.Config(), "config.toml and the struct defaults drifted apart"


def test_empty_file_takes_defaults(tmp_path: Path) -> None:
    assert config.load(write(tmp_path, ""), environ={}) == config.Config()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[broker]\nport = 99999\n", ":2: [broker] port: expected `int` <= 65535"),
        ("[correlation]\n\nradus_m = 3\n", ":3: [correlation] radus_m: unknown key"),
        ('[sla]\nack_p1_s = "soon"\n', ":2: [sla] ack_p1_s: expected `float`, got `str`"),
        ('[operator]\nrole = "god"\n', ":2: [operator] role: invalid enum value 'god'"),
        ("[priority]\nsos = 0\n", ":2: [priority] sos: expected `int` >= 1"),
        ('[broker]\nmode = "cloud"\n', ":2: [broker] mode: invalid enum value 'cloud'"),
    ],
)
def test_bad_value_names_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as info:
        config.load(path, environ={})
    assert str(info.value) == f"{path}{expected}" or str(info.value).startswith(f"{path}{expected}")


def test_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[broker\n")
    with pytest.raises(config.ConfigError, match=r"not valid TOML: .*line 1"):
        config.load(path, environ={})


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="no such configuration file"):
        config.load(tmp_path / "nope.toml", environ={})


def test_environment_overrides_one_key(tmp_path: Path) -> None:
    env = {
        "ANSIM_BROKER__PORT": "1883",
        "ANSIM_OPERATOR__ID": "op-gangnam-2",
        "ANSIM_CORE__TICK_S": "2.5",
        "ANSIM_PRIORITY__PERSON_DOWN": "1",
        "UNRELATED": "x",
    }
    loaded = config.load(write(tmp_path, "[broker]\nport = 2000\n"), environ=env)
    assert loaded.broker.port == 1883
    assert loaded.operator.id == "op-gangnam-2"
    assert loaded.core.tick_s == 2.5
    assert loaded.priority.for_kind("person-down") == 1


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ANSIM_BROKER__PORT": "abc"}, "ANSIM_BROKER__PORT: [broker] port: expected `int`"),
        ({"ANSIM_NOPE__X": "1"}, "ANSIM_NOPE__X: no configuration section [nope]"),
        ({"ANSIM_BROKER__PROT": "1"}, "ANSIM_BROKER__PROT: section [broker] has no key 'prot'"),
    ],
)
def test_bad_override_names_the_variable(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    with pytest.raises(config.ConfigError) as info:
        config.load(write(tmp_path, ""), environ=env)
    assert str(info.value).startswith(expected)


def test_priority_for_kind_defaults() -> None:
    prio = config.PriorityConfig()
    assert prio.for_kind("sos") == 1
    assert prio.for_kind("scream") == 2
    assert prio.for_kind("camera-fault") == 4
    assert prio.for_kind("something-new") == 4


def test_roles_from_config_and_environment(tmp_path: Path) -> None:
    loaded = config.load(
        write(tmp_path, '[core]\ndefault_role = "observer"\n[roles]\nboss = "supervisor"\n'),
        environ={"ANSIM_ROLES__OP7": '"operator"'},
    )
    assert loaded.role_of("boss") == "supervisor"
    assert loaded.role_of("op7") == "operator"
    assert loaded.role_of("stranger") == "observer"


def test_a_removed_key_is_refused_with_its_reason(tmp_path: Path) -> None:
    """shared_subscription split one city between cores that numbered incidents alike."""
    path = write(tmp_path, "[core]\ntick_s = 1.0\nshared_subscription = true\n")
    with pytest.raises(config.ConfigError) as raised:
        config.load(path, environ={})
    message = str(raised.value)
    assert f"{path}, line 3: [core] shared_subscription: removed" in message
    assert "numbered incidents alike" in message
    env = {"ANSIM_CORE__SHARED_SUBSCRIPTION": "true"}
    with pytest.raises(config.ConfigError, match=r"^ANSIM_CORE__SHARED_SUBSCRIPTION: "):
        config.load(write(tmp_path, "[core]\n"), environ=env)


def test_a_partition_name_that_is_no_topic_level_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[partitions]\n"north/1" = ["Mapo-gu"]\n', encoding="utf-8")
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, environ={})
    assert "[partitions] north/1: a partition's name is" in str(caught.value)


# --- [owners] first_come and partitions ---------------------------------------------------

TWO = (
    "[partitions]\n"
    f"north = [{', '.join(repr(d) for d in HAN_NORTH)}]\n"
    f"south = [{', '.join(repr(d) for d in HAN_SOUTH)}]\n"
)
OWNERS = (
    '[owners.cameras]\nsim = ["cam-*"]\n'
    '[owners.responders]\nsim = ["unit-*"]\n'
    '[owners.senders]\ncap-gateway = ["*@safekorea.go.kr"]\n'
)
WHAT_TO_DO = (
    "[owners] first_come: a city of several partitions cannot tell which source came first"
    " across its cores; name who owns each camera, unit and CAP sender id in [owners.cameras],"
    " [owners.responders], [owners.senders] and set first_come = false"
)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("[core]\ntick_s = 1.0\n\n" + TWO, 4),  # first come by default: the [partitions] line
        ("[owners]\n# the default\nfirst_come = true\n" + TWO, 3),  # the line that sets it
    ],
)
def test_first_come_in_a_city_of_several_partitions_is_refused(
    tmp_path: Path, text: str, line: int
) -> None:
    """Each core would decide "first" alone: an id registered in the north could be
    claimed by another source in the south (tests/attack/test_partitions_attack.py, 17)."""
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, environ={})
    assert str(caught.value) == f"{path}:{line}: {WHAT_TO_DO}"


def test_first_come_set_by_the_environment_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "[owners]\nfirst_come = false\n" + OWNERS + TWO)
    with pytest.raises(config.ConfigError) as caught:
        config.load(path, environ={"ANSIM_OWNERS__FIRST_COME": "true"})
    assert str(caught.value) == f"ANSIM_OWNERS__FIRST_COME: {WHAT_TO_DO}"
    env = {
        "ANSIM_PARTITIONS__NORTH": repr(list(HAN_NORTH)),
        "ANSIM_PARTITIONS__SOUTH": repr(list(HAN_SOUTH)),
    }
    with pytest.raises(config.ConfigError) as caught:
        config.load(write(tmp_path, ""), environ=env)
    assert str(caught.value) == f"ANSIM_PARTITIONS__NORTH: {WHAT_TO_DO}"


def test_several_partitions_with_named_owners_load(tmp_path: Path) -> None:
    loaded = config.load(
        write(tmp_path, "[owners]\nfirst_come = false\n" + OWNERS + TWO), environ={}
    )
    assert loaded.partition_map().names == ("north", "south")
    owners = loaded.engine_settings("south").owners
    assert not owners.first_come
    assert owners.cameras == {"sim": ["cam-*"]} and owners.responders == {"sim": ["unit-*"]}


@pytest.mark.parametrize(
    "text",
    [
        "",  # make run: no [partitions], first come
        "[owners]\nfirst_come = true\n[partitions]\ncity = [" + ", ".join(
            repr(d) for d in (*HAN_NORTH, *HAN_SOUTH)
        ) + "]\n",  # one partition named: still one core
    ],
)  # fmt: skip
def test_one_partition_keeps_first_come(tmp_path: Path, text: str) -> None:
    assert config.load(write(tmp_path, text), environ={}).owners.first_come


def test_the_deploy_guides_two_partition_city_loads(tmp_path: Path) -> None:
    """docs/deploy.md, "Two hosts, 25 districts": the file as printed is a valid city."""
    guide = (Path(__file__).parent.parent / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = guide.split("## Two hosts, 25 districts", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    loaded = config.load(write(tmp_path, example), environ={})
    assert loaded.partition_map().names == ("north", "south") and not loaded.owners.first_come
