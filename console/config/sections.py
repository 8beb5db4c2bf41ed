"""The sections of the configuration, one typed struct each, with their defaults."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct, field

from console.engine.districts import District, DistrictMap, service_box
from console.engine.partitions import Partitions
from protocols.frigate import FrigateMapping
from protocols.mqtt_brokers import parse_address
from protocols.owntracks import OwnTracksMapping
from protocols.schemas import Role
from protocols.sia import SiaMapping

Positive = Annotated[float, Meta(gt=0)]
NonNegative = Annotated[float, Meta(ge=0)]
Port = Annotated[int, Meta(ge=1, le=65535)]
PriorityLevel = Annotated[int, Meta(ge=1, le=4)]
Hour = Annotated[int, Meta(ge=0, le=23)]

# The default configuration ships inside the package, so an installed `ansim` finds it
# from any folder; the repository's top-level config.toml is a link to it.
# The default configuration ships inside the package, so an installed `ansim` finds it
# from any folder; the repository's top-level config.toml is a link to it.
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "config.toml"


class ConfigError(Exception):
    """A configuration problem, already phrased for the person starting Ansim."""


class _Section(Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class BrokerConfig(_Section):
    mode: Literal["embedded", "external"] = "embedded"
    host: str = "127.0.0.1"
    port: Port = 18830
    protocol: Literal[4, 5] = 5
    keepalive: Annotated[int, Meta(ge=5, le=3600)] = 15
    username: str = ""
    password: str = ""
    tls_ca: str = ""
    tls_cert: str = ""
    tls_key: str = ""
    reconnect_min_s: Positive = 0.5
    reconnect_max_s: Positive = 15.0
    embedded_persistence: str = ""
    # Further brokers ("host:port"), tried in order when host:port is gone (docs/deploy.md).
    fallbacks: list[str] = field(default_factory=list)
    return_check_s: Positive = 30.0

    def __post_init__(self) -> None:
        for number, entry in enumerate(self.fallbacks, start=1):
            try:
                parse_address(entry)
            except ValueError as exc:
                raise ValueError(f"fallbacks, entry {number}: {exc}") from None


class OperatorConfig(_Section):
    id: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+\Z")] = "op1"
    name: str = "Operator 1"
    role: Role = Role.OPERATOR


class CoreConfig(_Section):
    client_id: Annotated[str, Meta(min_length=1, max_length=64)] = "ansim-core"
    session_expiry_s: Annotated[int, Meta(gt=0)] = 86400
    publish_interval_s: Positive = 0.2
    tick_s: Positive = 1.0
    log_interval_s: Positive = 60
    # Role of an operator not listed in [roles].
    default_role: Role = Role.OPERATOR
    # Safe shelters: the path of a JSON list of them, or "" for none (see config.toml).
    shelters: str = ""
    # Hot standby (PostgreSQL journal only): start as a standby that follows the journal
    # and takes the lease when the active's expires (console/core/standby.py).
    standby: bool = False
    # The active's lease, renewed every third of it: how long a dead active stays active.
    lease_ttl_s: Annotated[float, Meta(ge=1.0, le=300.0)] = 5.0
    # The partition this core is the authority of ([partitions]); "" when there is one.
    partition: str = ""


class JournalConfig(_Section):
    backend: Literal["sqlite", "postgres"] = "sqlite"
    path: str = "var/journal.db"
    dsn: str = "postgresql://127.0.0.1:5432/ansim"
    batch_max: Annotated[int, Meta(ge=1, le=100_000)] = 500


class SimulateConfig(_Section):
    seed: int = 7
    cameras: Annotated[int, Meta(ge=0, le=200_000)] = 2000
    responders: Annotated[int, Meta(ge=0, le=20_000)] = 60
    shelters: Annotated[int, Meta(ge=0, le=20_000)] = 200
    rate: NonNegative = 2.0
    scenario: Literal["quiet", "evening", "storm"] = "evening"
    duration_s: NonNegative = 0
    source: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+\Z")] = (
        "sim"
    )
    resend_s: Positive = 5.0
    # The people of the training city who react to the core (console/sim/desk.py, units.py).
    # Simulated colleagues desk-1 .. desk-N at the same control room; 0: none.
    desk: Annotated[int, Meta(ge=0, le=50)] = 2
    # An unowned incident waits this long before a colleague takes it (the human's pick).
    desk_pick_s: Positive = 90.0
    # A P1 waits this long: less than [sla] ack_p1_s, as a colleague would not let it breach.
    desk_pick_p1_s: Positive = 20.0
    # A colleague's pace: seconds between two steps on one incident (on average).
    desk_think_s: Positive = 15.0
    # A unit on scene stays this long (on average) before its colleague resolves.
    desk_on_scene_s: Positive = 300.0
    # Incidents one colleague works at once.
    desk_max_each: Annotated[int, Meta(ge=1, le=1000)] = 6
    # The simulated units follow the core's dispatches: en route, on scene, back on patrol.
    units: bool = True
    # From the dispatch to setting off, seconds (on average); en route, a report this often.
    units_turnout_s: NonNegative = 20.0
    units_report_s: Positive = 10.0


class ConsoleConfig(_Section):
    bell: bool = True
    # The bell's budget: at most this many rings in any 60 s (0: never ring).
    bell_max_per_min: Annotated[int, Meta(ge=0, le=60)] = 4
    # An incident turning escalated rings too, as two bells (a P1 rings once).
    bell_escalation: bool = True
    fps: Annotated[float, Meta(ge=1, le=60)] = 15
    colors: Literal["auto", "16", "256"] = "auto"
    # The seat's language (widgets/i18n.py LANGUAGES); `ansim console --language` wins.
    language: Literal["en", "ko"] = "en"


class SshConfig(_Section):
    """``[ssh]``: `ansim ssh`, the console over SSH for field offices, a key per person."""

    # Where it listens. Loopback by default; a field office reaches it over the network
    # only when the host is set to an address of this machine (docs/ssh.md).
    host: str = "127.0.0.1"
    port: Port = 2222
    # The authorized-keys file (a key per line, with its operator id and role) and the
    # host key, made on first start. Relative paths: from the config file's folder.
    keys: str = "var/ssh/authorized_keys"
    host_key: str = "var/ssh/host_ed25519"
    # A seat with no keystroke for this long is closed (0: never).
    idle_close_s: NonNegative = 900.0
    # Consoles served at once; one more is refused with a message.
    max_sessions: Annotated[int, Meta(ge=1, le=1000)] = 32


# A token that travels in a URL (?token=): RFC 3986 unreserved characters only.
UrlToken = Annotated[str, Meta(max_length=512, pattern=r"^([A-Za-z0-9._~-]{16,})?\Z")]


class WebConfig(_Section):
    """``[web]``: `ansim web`, the console in a browser for wall screens (docs/web.md)."""

    # Where it listens. Loopback by default; any other address needs a configured token.
    host: str = "127.0.0.1"
    port: Port = 8088
    # The token a browser must bring (?token=... once, then a cookie). "" and no
    # token_file: a new one is made at each start and printed once with the URL.
    token: UrlToken = ""
    # A file holding the token (relative paths: from the config file's folder).
    token_file: str = ""
    # Who the seat is: its operator id and role (the core's [roles] must not grant more).
    operator: Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:@-]+\Z")] = (
        "wall"
    )
    role: Role = Role.OBSERVER
    # The address browsers use, when it is not http://host:port (behind a reverse proxy).
    public_url: str = ""
    # Consoles served at once (each browser tab is one); one more is refused (503).
    max_sessions: Annotated[int, Meta(ge=1, le=100)] = 4


SourceId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@-]+\Z")]
# RFC 6750 b64token characters; at least 16 of them, so a guessable token fails at start.
BearerToken = Annotated[str, Meta(min_length=16, max_length=512, pattern=r"^[A-Za-z0-9._~+/=-]+\Z")]
# An endpoint a gateway token may be scoped to: POST /v1/sos, POST /v1/cap.
GatewayEndpoint = Literal["sos", "cap"]
# A CAP <sender>, as protocols.cap accepts it: no spaces, commas, '<' or '&'.
CapSender = Annotated[str, Meta(min_length=1, max_length=256, pattern=r"^[^\s,<&]+\Z")]


class GatewayConfig(_Section):
    """The HTTP ingest (`ansim gateway`): SOS in JSON and CAP 1.2 alerts from other systems."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 18080
    max_body_bytes: Annotated[int, Meta(ge=1024, le=256 * 1024)] = 64 * 1024
    max_cap_bytes: Annotated[int, Meta(ge=1024, le=1_000_000)] = 1_000_000
    rate_per_minute: Positive = 120.0
    rate_burst: Annotated[int, Meta(ge=1, le=10_000)] = 20
    receipt_timeout_s: Positive = 10.0
    resend_s: Positive = 1.0
    read_timeout_s: Positive = 10.0
    # /v1/health is degraded (503) once the core's summary is older than this.
    summary_stale_s: Positive = 15.0
    tokens: dict[SourceId, BearerToken] = field(default_factory=dict)
    # Source id -> the endpoints its token may use. Empty: every token may use both
    # (the old behaviour); once any source is listed, an unlisted one may use none.
    scopes: dict[SourceId, list[GatewayEndpoint]] = field(default_factory=dict)
    # CAP <sender> -> the source ids whose tokens may speak for it. Empty: no binding;
    # once any sender is listed, a CAP message naming an unlisted sender is refused.
    cap_senders: dict[CapSender, list[SourceId]] = field(default_factory=dict)
    geocodes: dict[str, str] = field(default_factory=dict)


class FrigateConfig(FrigateMapping, kw_only=True, forbid_unknown_fields=True):
    """``[frigate]``: the mapping of ``protocols.frigate``, and whether the core reads it."""

    enabled: bool = False


class OwnTracksConfig(OwnTracksMapping, kw_only=True, forbid_unknown_fields=True):
    """``[owntracks]``: the mapping of ``protocols.owntracks``, and whether the core reads it."""

    enabled: bool = False


HexId = Annotated[str, Meta(pattern=r"^[0-9A-F]{1,6}$")]


class SiaConfig(SiaMapping, kw_only=True, forbid_unknown_fields=True):
    """``[sia]``: `ansim forward-sia`, new SOS incidents as SIA DC-09 / Contact ID frames."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: Port = 18090
    account: Annotated[str, Meta(pattern=r"^[0-9A-F]{3,16}$")] = "0001"
    receiver: Annotated[str, Meta(pattern=r"^[0-9A-F]{0,6}$")] = "0"
    prefix: HexId = "0"
    timestamp: bool = True
    timeout_s: Positive = 10.0
    attempts: Annotated[int, Meta(ge=1, le=100)] = 6
    retry_min_s: Positive = 1.0
    retry_max_s: Positive = 30.0
    max_age_s: Positive = 300.0
    restore_on_close: bool = False
    heartbeat_s: NonNegative = 0
    client_id: Annotated[str, Meta(min_length=1, max_length=64)] = "ansim-forward-sia"
    max_tracked: Annotated[int, Meta(ge=1, le=1_000_000)] = 10_000


_TRAINING_ROLES = {
    "op1": Role.OPERATOR,
    "sup1": Role.SUPERVISOR,
    "watch1": Role.OBSERVER,
    "wall": Role.OBSERVER,  # the wall screen, `ansim web`
}


@functools.cache
def default_districts() -> tuple[District, ...]:
    """The districts of the shipped configuration (Seoul's 25 gu), read once."""
    raw = tomllib.loads(DEFAULT_PATH.read_text(encoding="utf-8"))
    return tuple(msgspec.convert(raw["city"]["districts"], list[District]))


class CityConfig(_Section):
    name: str = "Seoul"
    # The default is the training city's: the [city] table of the shipped config.toml.
    districts: list[District] = field(default_factory=lambda: list(default_districts()))
    # [lat_min, lon_min, lat_max, lon_max]; [] = the districts' circles plus the margin.
    service_area: list[float] = field(default_factory=list)
    service_margin_m: NonNegative = 10_000.0

    def __post_init__(self) -> None:
        if self.service_area:
            service_box(self.service_area)  # a ValueError names what is expected

    def district_map(self) -> DistrictMap:
        area = tuple(self.service_area)
        return _district_map(tuple(self.districts), area, self.service_margin_m)


@functools.lru_cache(maxsize=8)
def _partition_map(
    table: tuple[tuple[str, tuple[str, ...]], ...], districts: tuple[str, ...]
) -> Partitions:
    return Partitions(dict(table), districts)


@functools.lru_cache(maxsize=8)
def _district_map(
    districts: tuple[District, ...], area: tuple[float, ...] = (), margin_m: float = 10_000.0
) -> DistrictMap:
    return DistrictMap(districts, service_area=area or None, margin_m=margin_m)
