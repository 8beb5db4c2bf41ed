"""A city of two partitions under attack: the deploy/ Mosquitto, two real `ansim core
--partition` processes (north and south of the Han river), a victim and an attacker.

The victim (source ``cam-1``) has, in each partition, an SOS incident, a camera and a
police unit; its north camera stands in Mapo-gu and its south camera in Yeongdeungpo-gu,
each a border district the other partition reads. The attacker holds one ordinary source
account (``cam-2``) and publishes whatever the broker lets it. The helpers read what a
fresh console sees (the retained state, through a city-wide seat), what each partition
journaled and refused (its SQLite journal, read-only), and whether each core is up.
"""

from __future__ import annotations

import contextlib
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from console import config as config_module
from console.engine.districts import DistrictMap
from console.engine.partitions import Partitions
from protocols import codec, topics
from protocols.schemas import DistrictCameras, IncidentState, Reply, ResponderState, Summary
from tests.attack.city import account, retained_picture, wait
from tests.partitioned import NORTH, SOUTH, owners
from tests.processes import AnsimProcess, write_config
from tests.secure_broker import DEPLOY, Client, DeployBroker

PARTS = ("north", "south")
VICTIM, ATTACKER, SEAT = "cam-1", "cam-2", "op1"
NORTH_BANK = (37.5418, 126.9120)  # Mapo-gu (the north's), on the Han
SOUTH_BANK = (37.5398, 126.9120)  # Yeongdeungpo-gu (the south's), 222 m across the river
GANGNAM = (37.5172, 127.0473)
JUNG = (37.5601, 126.9960)  # Jung-gu: no border district of the south
GURO = (37.4943, 126.8560)  # Guro-gu: no border district of the north
MARK = {"north": (37.5945, 126.9770), "south": (37.4673, 126.9453)}  # Jongno-gu, Gwanak-gu


def sos(alarm_id: str, device: str, source: str, at: tuple[float, float]) -> dict[str, Any]:
    return {
        "type": "sos", "alarm_id": alarm_id, "source": source, "device_id": device,
        "name": "Kim Ji-woo", "phone": "010-1111-2222", "lat": at[0], "lon": at[1],
        "accuracy_m": 8.0, "trigger": "button", "ts": time.time(),
    }  # fmt: skip


def camera(camera_id: str, at: tuple[float, float], **fields: Any) -> dict[str, Any]:
    return {"type": "camera", "camera_id": camera_id, "status": "online", "ts": time.time(),
            "name": camera_id, "lat": at[0], "lon": at[1], **fields}  # fmt: skip


def unit(unit_id: str, at: tuple[float, float], **fields: Any) -> dict[str, Any]:
    return {"type": "responder", "responder_id": unit_id, "kind": "police",
            "status": "available", "lat": at[0], "lon": at[1], "ts": time.time(),
            **fields}  # fmt: skip


def alert(identifier: str, at: tuple[float, float], headline: str) -> dict[str, Any]:
    """A public alert as the CAP sender the victim speaks for."""
    return {"type": "alert", "identifier": identifier, "sender": "police@seoul.go.kr",
            "sent": time.time(), "msg_type": "Alert", "priority": 1, "headline": headline,
            "lat": at[0], "lon": at[1]}  # fmt: skip


def cctv(event_id: str, camera_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "cctv", "event_id": event_id, "camera_id": camera_id, "kind": "scream",
            "confidence": 0.9, "ts": time.time(), **fields}  # fmt: skip


# District levels an attacker tries, and what the broker does with each.
HOSTILE_LEVELS = [
    ("Atlantis-gu", "ok"),  # a district the city lacks
    ("\u041c\u0430\u0440\u043e-gu", "ok"),  # Cyrillic look-alike of Mapo-gu
    ("mapo-gu", "ok"),
    ("Mapo-gu/x", "ok"),  # one level more
    ("", "ok"),  # an empty level
    ("M" * 60_000, "ok"),
    ("Mapo-gu\x07", "no PUBACK"),  # Mosquitto cuts the connection: malformed packet
    ("Mapo-gu\n", "no PUBACK"),
    ("Mapo-gu+", "client refused"),  # a wildcard never leaves paho
    ("#", "client refused"),
]


# What the victim owns, per partition: (device, camera, its district and position, unit,
# its district and position, where the SOS is raised).
VICTIMS = {
    "north": ("phone-vn", "cam-vn", "Mapo-gu", (37.5425, 126.9120), "unit-vn", "Jung-gu", JUNG,
              NORTH_BANK),
    "south": ("phone-vs", "cam-vs", "Yeongdeungpo-gu", SOUTH_BANK, "unit-vs", "Guro-gu", GURO,
              GANGNAM),
}  # fmt: skip


# A city of several partitions names its owners (first come is refused at load).
OWNED = owners(
    cameras={
        VICTIM: ["cam-v?", f"cam-marker-{VICTIM}-*"],
        ATTACKER: ["cam-m?", "cam-level-*", "cam-u1", "cam-atl", f"cam-marker-{ATTACKER}-*", "c-*"],
    },
    responders={VICTIM: ["unit-v?"], ATTACKER: ["unit-m?", "unit-x?", "u-*"]},
    senders={VICTIM: ["police@seoul.go.kr"]},
)


class PartitionedCity:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = DeployBroker(workdir / "broker")
        self._add_cores()
        self.broker.start()
        self.journals = {p: workdir / f"journal-{p}.db" for p in PARTS}
        self.configs = {p: self._config(p) for p in PARTS}
        self.cores: dict[str, AnsimProcess] = {}
        self._clients: dict[str, Client] = {}
        self._markers = 0
        self.listening: set[str] = set()  # accounts subscribed to their replies

    def _add_cores(self) -> None:
        """The partitions' core accounts (deploy/make-passwords.sh, role core)."""
        security = self.broker.security_dir
        listing = security / "users"
        listing.write_text(listing.read_text() + "core ansim-core-north\ncore ansim-core-south\n")
        done = subprocess.run(
            [str(DEPLOY / "make-passwords.sh"), str(listing), str(security)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        lines = (security / "credentials").read_text().splitlines()
        self.broker.passwords = dict(line.split(" ", 1) for line in lines)

    def _config(self, partition: str) -> Path:
        """One file per partition: the same city, its own broker account."""
        user = f"ansim-core-{partition}"
        directory = self.workdir / partition
        directory.mkdir()
        return write_config(
            directory,
            self.broker.port,
            broker={"username": user, "password": self.broker.passwords[user], "keepalive": 5,
                    "reconnect_min_s": 0.05, "reconnect_max_s": 0.5},
            journal={"path": str(self.workdir / "journal-{partition}.db"), "batch_max": 200},
            partitions={"north": NORTH, "south": SOUTH},
            roles={SEAT: "operator"},
            **OWNED,
        )  # fmt: skip

    # --- processes ------------------------------------------------------------------

    def start(self, *partitions: str) -> None:
        before, starting = self.summaries(), partitions or PARTS
        for p in starting:
            self.cores[p] = AnsimProcess(self.configs[p], "core", "--partition", p).start()

        def ready() -> bool:
            # A summary newer than the last one: the core has rebuilt and connected.
            now = self.summaries()
            return all(not self.alive(p) or _newer(now.get(p), before.get(p)) for p in starting)

        wait(ready, f"the summaries of {starting}", timeout_s=30)
        for p in starting:
            assert self.alive(p), self.cores[p].log()

    def restart(self, partition: str) -> None:
        assert self.cores[partition].stop() == 0, self.cores[partition].log()
        self.start(partition)

    def alive(self, partition: str) -> bool:
        core = self.cores.get(partition)
        return core is not None and core.process is not None and core.process.poll() is None

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        for core in self.cores.values():
            core.stop()
        self.broker.stop()

    # --- accounts -------------------------------------------------------------------

    def client(self, user: str) -> Client:
        if user not in self._clients:
            self._clients[user] = account(self.broker, user)
        return self._clients[user]

    def publish(self, user: str, topic: str, payload: bytes) -> str:
        """Publish at QoS 1: "ok", "refused <code>" or what the broker did instead."""
        client = self.client(user)
        try:
            info = client.paho.publish(topic, payload, qos=1)
        except ValueError as exc:  # paho's own check (a wildcard in a topic name)
            return f"client refused: {exc}"
        cuts, deadline = len(client.disconnects), time.monotonic() + 3.0
        with client._acked:
            while info.mid not in client._acks:
                if time.monotonic() > deadline or len(client.disconnects) > cuts:
                    # The broker cut the connection: the next message takes a new one.
                    client.close()
                    del self._clients[user]
                    self.listening.discard(user)
                    return f"no PUBACK: {client.disconnects[-1:]}"
                client._acked.wait(0.05)
            rc = client._acks.pop(info.mid)
        return f"refused {rc}" if rc.is_failure else "ok"

    def send(self, user: str, topic: str, payload: bytes, *, expect: str = "ok") -> None:
        """Publish, then wait until both cores have taken it: a marker placed in each
        partition follows on the same connection, and each core reads one connection's
        messages in order."""
        got = self.publish(user, topic, payload)
        assert got.startswith(expect), f"{topic!r:.120} by {user}: {got}"
        self.sync(user)

    def sync(self, user: str) -> None:
        self._markers += 1
        token = f"marker-{self._markers}"
        for p in PARTS:
            message = camera(f"cam-marker-{user}-{p}", MARK[p], name=token)
            rc = self.publish(user, topics.raw(user, "camera"), msgspec.json.encode(message))
            assert rc == "ok", f"the marker for {user}: {rc}"
        wait(
            lambda: all(self._journaled(p, token) or not self.alive(p) for p in PARTS),
            f"both cores to take {token}",
        )
        for p in PARTS:
            assert self.alive(p), self.cores[p].log()

    def send_as(self, user: str, kind: str, message: dict[str, Any], district: str = "") -> None:
        self.send(user, topics.raw(user, kind, district or None), msgspec.json.encode(message))

    # --- the journals ---------------------------------------------------------------

    @contextlib.contextmanager
    def _journal(self, partition: str) -> Iterator[sqlite3.Connection]:
        path = self.journals[partition]
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            yield db
        finally:
            db.close()

    def _journaled(self, partition: str, token: str) -> bool:
        if not self.journals[partition].exists():
            return False
        with self._journal(partition) as db:
            row = db.execute(
                "SELECT 1 FROM journal WHERE kind = 'event' AND instr(payload, ?) > 0 LIMIT 1",
                (token.encode(),),
            ).fetchone()
        return row is not None

    def dead(self, partition: str, source: str = ATTACKER) -> list[tuple[str, str]]:
        """(topic, reason) of each stored dead letter from ``source``'s raw topics."""
        with self._journal(partition) as db:
            rows = db.execute("SELECT topic, reason FROM journal WHERE kind = 'dead'").fetchall()
        return [(t, r) for t, r in rows if t.startswith(f"{topics.ROOT}/raw/{source}/")]

    def refusals(self, partition: str, source: str = ATTACKER) -> int:
        """Refusals of ``source``: stored, plus counted past its dead-letter budget."""
        with self._journal(partition) as db:
            row = db.execute(
                "SELECT coalesce(sum(suppressed), 0) FROM dead_counts WHERE source = ?",
                (f"raw:{source}",),
            ).fetchone()
        return len(self.dead(partition, source)) + int(row[0])

    def refusal_counts(self) -> dict[str, int]:
        return {p: self.refusals(p) for p in PARTS}

    def events(self, partition: str, needle: str) -> list[tuple[str, str]]:
        """(topic, key) of each accepted event whose payload holds ``needle``."""
        with self._journal(partition) as db:
            rows = db.execute(
                "SELECT topic, key FROM journal WHERE kind = 'event' AND instr(payload, ?) > 0",
                (needle.encode(),),
            ).fetchall()
        return [(str(t), str(k)) for t, k in rows]

    # --- what a fresh city-wide console sees ------------------------------------------

    def retained(self) -> dict[str, Any]:
        return retained_picture(self.broker)

    def summaries(self) -> dict[str, Summary]:
        return {
            topics.last_level(t): s for t, s in self.retained().items() if isinstance(s, Summary)
        }


def _newer(summary: Summary | None, than: Summary | None) -> bool:
    return summary is not None and (than is None or summary.ts > than.ts)


def incidents(state: dict[str, Any]) -> dict[str, tuple[str, IncidentState]]:
    return {s.id: (t, s) for t, s in state.items() if isinstance(s, IncidentState)}


def units(state: dict[str, Any], unit_id: str) -> list[tuple[str, ResponderState]]:
    """Every retained state of a unit with this id, by topic (one, unless two partitions
    each think it theirs)."""
    return sorted(
        (t, s) for t, s in state.items() if isinstance(s, ResponderState) and s.id == unit_id
    )


def cameras(state: dict[str, Any], camera_id: str) -> list[tuple[str, Any]]:
    return sorted(
        (t, c)
        for t, page in state.items()
        if isinstance(page, DistrictCameras)
        for c in page.cameras
        if c.id == camera_id
    )


def victim_now(city: PartitionedCity, state: dict[str, Any] | None = None) -> dict[str, Any]:
    """The victim's incidents, units and cameras as a city-wide seat sees them."""
    state = city.retained() if state is None else state
    found: dict[str, Any] = {}
    for p, (device, cam, _, _, unit_id, _, _, _) in VICTIMS.items():
        (incident,) = [s for _, s in incidents(state).values() if s.source == device]
        found[f"{p} incident"] = (
            incident.id, incident.partition, incident.home, incident.lat, incident.lon,
            incident.person, incident.phone, incident.status, incident.sos_count,
            incident.responders,
        )  # fmt: skip
        found[f"{p} unit"] = [
            (t, s.status, s.lat, s.lon, s.incident_id, s.home) for t, s in units(state, unit_id)
        ]
        found[f"{p} camera"] = [(t, c.name, c.status, c.lat, c.lon) for t, c in cameras(state, cam)]
    return found


def setup_victim(city: PartitionedCity) -> None:
    for p, (
        device,
        cam,
        cam_district,
        cam_at,
        unit_id,
        unit_district,
        unit_at,
        sos_at,
    ) in VICTIMS.items():
        city.send_as(VICTIM, "camera", camera(cam, cam_at, name=f"Han {p} bank"), cam_district)
        city.send_as(VICTIM, "responder", unit(unit_id, unit_at), unit_district)
        city.send_as(VICTIM, "sos", sos(f"v-{p}", device, VICTIM, sos_at))
    wait(lambda: _complete(city), "the victim's incidents, units and cameras")


def _complete(city: PartitionedCity) -> bool:
    try:
        return all(victim_now(city).values())
    except ValueError:  # an incident not published yet
        return False


def placement(city: PartitionedCity) -> tuple[Partitions, DistrictMap]:
    """The city's partitions and district map, as both cores read the configuration."""
    cfg = config_module.load(city.configs["north"], environ={})
    return cfg.partition_map(), cfg.city.district_map()


def owner_of(city: PartitionedCity, at: tuple[float, float]) -> str:
    partitions, districts = placement(city)
    return partitions.owner(districts.district_of(*at))


def on_the_line(city: PartitionedCity) -> list[tuple[float, float]]:
    """The two floats either side of the Mapo-gu / Yeongdeungpo-gu line, on the meridian
    of the river bank: a point cannot be nearer the border than these."""
    _, districts = placement(city)
    lon = NORTH_BANK[1]
    north, south = NORTH_BANK[0], SOUTH_BANK[0]
    while True:
        middle = (north + south) / 2
        if middle in (north, south):
            return [(north, lon), (south, lon)]
        if districts.district_of(middle, lon) == "Mapo-gu":
            north = middle
        else:
            south = middle


def command(city: PartitionedCity, partition: str, **fields: Any) -> Reply:
    """An operator's command to one partition's core, and its reply."""
    seat = city.client(SEAT)
    if SEAT not in city.listening:
        seat.subscribe(topics.reply(SEAT))
        city.listening.add(SEAT)
    city._markers += 1
    message = {"type": "cmd", "cmd_id": f"c-{city._markers}", "operator": SEAT,
               "ts": time.time(), **fields}  # fmt: skip
    got = city.publish(SEAT, topics.cmd(SEAT, partition), msgspec.json.encode(message))
    assert got == "ok", got
    while True:
        received = seat.next(timeout=10)
        reply = codec.decode_any(received.payload)
        if isinstance(reply, Reply) and reply.cmd_id == message["cmd_id"]:
            return reply


def after_each(city: PartitionedCity, victim: dict[str, Any]) -> None:
    """The invariants: both cores up, every refusal has a reason, the victim untouched."""
    for p in PARTS:
        assert city.alive(p), city.cores[p].log()
        assert all(reason.strip() for _, reason in city.dead(p))
    assert victim_now(city) == victim


def refused_since(city: PartitionedCity, before: dict[str, int]) -> dict[str, int]:
    now = city.refusal_counts()
    return {p: now[p] - before[p] for p in PARTS}


def taken_by(city: PartitionedCity, needle: str) -> list[str]:
    """The partitions that journaled an event holding ``needle``, once per record."""
    return [p for p in PARTS for _ in city.events(p, needle)]


def settle(predicate: Callable[[], bool], seconds: float = 3.0) -> bool:
    """Whether ``predicate`` comes true within ``seconds`` (publication follows the commit)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def sos_keys(city: PartitionedCity, partition: str) -> list[str]:
    return sorted(k for _, k in city.events(partition, '"alarm_id"') if k.startswith("sos:"))


def raised_by(city: PartitionedCity, devices: tuple[str, ...]) -> list[IncidentState]:
    return [s for _, s in incidents(city.retained()).values() if s.source in devices]
