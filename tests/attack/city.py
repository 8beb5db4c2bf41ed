"""A small city under attack: the deploy/ Mosquitto, a real `ansim core`, two sources.

The victim (account ``cam-1``) registers a camera and a police unit and raises an SOS;
the attacker holds one ordinary account (source ``cam-2``, or operator ``op2``) and
sends whatever the broker lets it. The helpers read what a fresh console would see (the
retained state), what the core journaled and refused (the SQLite journal, read-only),
and whether the core is up.
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, Phase, settings

from protocols import codec, topics
from protocols.schemas import DistrictCameras, IncidentState, ResponderState, Summary
from tests.processes import AnsimProcess, write_config
from tests.secure_broker import CORE, Client, DeployBroker
from tests.state_lookup import find, must

VICTIM, ATTACKER = "cam-1", "cam-2"
CITY_HALL = (37.5663, 126.9779)
VICTIM_DEVICE, VICTIM_CAMERA, VICTIM_UNIT = "phone-victim", "cam-victim", "unit-victim"
SENDER = "police@seoul.go.kr"  # the CAP sender the victim speaks for


# The Hypothesis profile of the live suites: each example goes through a real broker and
# core, so shrinking one would take minutes (the failing example is printed whole).
LIVE_EXAMPLES = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)  # fmt: skip


def account(broker: DeployBroker, user: str) -> Client:
    """A connection as ``user`` with its own password (the broker allows one per account)."""
    return Client(
        broker, user, username=user, password=broker.passwords[user], tls=False
    ).connected()


def retained_picture(broker: DeployBroker) -> dict[str, Any]:
    """What a fresh console is sent: the retained state, read by the probe account op3,
    until live traffic or a quiet moment."""
    probe = Client(
        broker, "probe", username="op3", password=broker.passwords["op3"], tls=False
    ).connected()
    try:
        probe.subscribe(topics.STATE_ALL)
        found: dict[str, Any] = {}
        while True:
            try:
                message = probe.inbox.get(timeout=0.4)
            except queue.Empty:
                return found
            if not message.retain:
                return found
            if message.payload:
                found[message.topic] = codec.decode_any(
                    message.payload, max_bytes=codec.MAX_STATE_PAYLOAD
                )
    finally:
        probe.close()


def wait(predicate: Callable[[], bool], what: str, timeout_s: float = 15.0) -> None:
    """Poll until ``predicate()`` holds: the processes under test set the pace."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def sos(alarm_id: str, device: str, source: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "sos", "alarm_id": alarm_id, "source": source, "device_id": device,
        "name": "Kim Ji-woo", "phone": "010-1111-2222", "lat": CITY_HALL[0],
        "lon": CITY_HALL[1], "accuracy_m": 8.0, "trigger": "button", "ts": time.time(),
        **fields,
    }  # fmt: skip


class City:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = DeployBroker(workdir / "broker")
        self.broker.start()
        self.journal_path = workdir / "journal.db"
        self.config = write_config(
            workdir,
            self.broker.port,
            broker={
                "username": CORE,
                "password": self.broker.passwords[CORE],
                "keepalive": 5,
                "reconnect_min_s": 0.05,
                "reconnect_max_s": 0.5,
            },
            roles={"op1": "operator", "op2": "operator", "op3": "observer"},
        )
        self.core: AnsimProcess | None = None
        self._clients: dict[str, Client] = {}
        self._markers = 0

    # --- processes ------------------------------------------------------------------

    def start_core(self) -> None:
        self.core = AnsimProcess(self.config, "core").start()
        wait(lambda: self.summary() is not None or not self.core_alive(), "the core's summary")
        assert self.core_alive(), self.core.log()

    def restart_core(self) -> None:
        assert self.core is not None
        assert self.core.stop() == 0, self.core.log()
        before = self.summary()
        self.core = AnsimProcess(self.config, "core").start()
        # A new summary (a later ts) says the restarted core has rebuilt and connected.
        wait(
            lambda: not self.core_alive() or _newer(self.summary(), before),
            "the restarted core's summary",
        )
        assert self.core_alive(), self.core.log()

    def core_alive(self) -> bool:
        return (
            self.core is not None
            and self.core.process is not None
            and (self.core.process.poll() is None)
        )

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        if self.core is not None:
            self.core.stop()
        self.broker.stop()

    # --- accounts ---------------------------------------------------------------------

    def client(self, user: str) -> Client:
        """One connection per account (the broker allows no more): made once, reused."""
        if user not in self._clients:
            self._clients[user] = account(self.broker, user)
        return self._clients[user]

    def send(self, user: str, topic: str, payload: bytes) -> None:
        """Publish, then wait until the core has taken it: journaled, refused or folded.

        A marker follows on the same connection (the core takes one connection's messages
        in order), so a message the core folds as a duplicate, which adds no record, is
        waited for as surely as one it journals.
        """
        rc = self.client(user).publish(topic, payload)
        assert not rc.is_failure, f"the broker refused {topic} for {user}: {rc}"
        self._markers += 1
        token = f"marker-{self._markers}"
        if user.startswith("op"):
            marker_topic, marker = topics.cmd(user), {
                "type": "cmd", "cmd_id": token, "operator": user, "action": "note",
                "incident_id": "I-999999", "ts": time.time(), "text": token,
            }  # fmt: skip
        else:
            marker_topic, marker = topics.raw(user, "camera"), {
                "type": "camera", "camera_id": f"cam-marker-{user}", "status": "online",
                "ts": time.time(), "name": token, "lat": CITY_HALL[0], "lon": CITY_HALL[1],
            }  # fmt: skip
        rc = self.client(user).publish(marker_topic, msgspec.json.encode(marker))
        assert not rc.is_failure, f"the broker refused the marker for {user}: {rc}"
        wait(
            lambda: self._journaled(token) or not self.core_alive(),
            f"the core to take {topic}",
        )

    def _journaled(self, token: str) -> bool:
        with self._journal() as db:
            row = db.execute(
                "SELECT 1 FROM journal WHERE kind <> 'dead' AND instr(payload, ?) > 0 LIMIT 1",
                (token.encode(),),
            ).fetchone()
        return row is not None

    def send_as(self, user: str, kind: str, message: dict[str, Any], source: str = "") -> None:
        self.send(user, topics.raw(source or user, kind), msgspec.json.encode(message))

    # --- what the core made of it -----------------------------------------------------------

    @contextlib.contextmanager
    def _journal(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(f"file:{self.journal_path}?mode=ro", uri=True, timeout=5)
        try:
            yield db
        finally:
            db.close()

    def seen(self) -> int:
        """Records journaled plus dead letters counted instead of stored."""
        if not self.journal_path.exists():
            return 0
        with self._journal() as db:
            records = db.execute("SELECT count(*) FROM journal").fetchone()[0]
            try:
                counted = db.execute("SELECT coalesce(sum(suppressed), 0) FROM dead_counts")
                suppressed = counted.fetchone()[0]
            except sqlite3.OperationalError:
                suppressed = 0
        return int(records) + int(suppressed)

    def dead_letters(self, source: str = ATTACKER) -> list[tuple[str, str]]:
        """(topic, reason) of every stored dead letter from ``source``'s topics."""
        with self._journal() as db:
            rows = db.execute("SELECT topic, reason FROM journal WHERE kind = 'dead'").fetchall()
        mine = (f"{topics.ROOT}/raw/{source}/", f"{topics.ROOT}/cmd/{source}")
        return [(t, r) for t, r in rows if t.startswith(mine)]

    def dead_letter_bytes(self) -> int:
        """What the stored dead letters hold (the files grow by whole pages, WAL included)."""
        with self._journal() as db:
            row = db.execute(
                "SELECT coalesce(sum(length(payload) + length(reason) + length(topic)), 0)"
                " FROM journal WHERE kind = 'dead'"
            ).fetchone()
        return int(row[0])

    # --- what a fresh console sees ---------------------------------------------------------

    def retained(self) -> dict[str, Any]:
        return retained_picture(self.broker)

    def summary(self) -> Summary | None:
        state = self.retained().get(topics.STATE_SUMMARY)
        return state if isinstance(state, Summary) else None

    def incidents_of(self, device: str, state: dict[str, Any] | None = None) -> list[IncidentState]:
        state = self.retained() if state is None else state
        return [s for s in state.values() if isinstance(s, IncidentState) and s.source == device]

    def unit(self, unit_id: str, state: dict[str, Any] | None = None) -> ResponderState | None:
        state = self.retained() if state is None else state
        found = find(state, "responder", unit_id)
        return found if isinstance(found, ResponderState) else None

    def camera(self, camera_id: str, state: dict[str, Any] | None = None) -> Any:
        state = self.retained() if state is None else state
        for page in state.values():
            if isinstance(page, DistrictCameras):
                for cell in page.cameras:
                    if cell.id == camera_id:
                        return cell
        return None


def _newer(summary: Summary | None, than: Summary | None) -> bool:
    return summary is not None and (than is None or summary.ts > than.ts)


def victim_now(city: City, incident_id: str) -> dict[str, Any]:
    state = city.retained()
    incident = must(state, "incident", incident_id)
    unit, camera = city.unit(VICTIM_UNIT, state), city.camera(VICTIM_CAMERA, state)
    assert unit is not None and camera is not None
    alerts = [s for s in state.values() if getattr(s, "source", None) == SENDER]
    return {
        "incident": (incident.id, incident.lat, incident.lon, incident.person, incident.phone,
                     incident.status, incident.sos_count),
        "unit": (unit.status, unit.lat, unit.lon, unit.name),
        "camera": (camera.name, camera.status, camera.lat, camera.lon),
        "alerts": sorted((a.id, a.status) for a in alerts),
    }  # fmt: skip


def after_each(city: City, victim: dict[str, Any], refusals: int = 0) -> None:
    """The invariants: the core is up, the victim untouched, every refusal has a reason."""
    assert city.core_alive(), city.core.log() if city.core else ""
    assert victim_now(city, victim["incident"][0]) == victim
    dead = city.dead_letters(ATTACKER) + city.dead_letters("op2")
    assert len(dead) >= refusals, dead
    assert all(reason.strip() for _, reason in dead)
