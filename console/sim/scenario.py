"""The simulated city's events: a pure, deterministic generator.

No I/O and no clock: the start time comes in as an argument, and the same
(city, seed, scenario, rate, start) gives the same messages in the same order.

The stream is a Poisson process at ``rate`` events per second, each event
drawn from the scenario's mix, plus follow-ups scheduled by earlier events:

- an SOS placed near cameras is followed, within a minute, by a scream, fight
  or person-down from one to three of those cameras (what correlation should
  find), and sometimes by a second SOS from the same phone (what folding should
  find);
- a camera fault is followed by the camera coming back online, and a flapping
  camera goes offline and online a few times in a row;
- a low-confidence CCTV event is sometimes withdrawn by the analytics.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Final, Literal

from console.sim import seoul
from console.sim.city import City
from protocols import topics
from protocols.schemas import (
    CameraHealth,
    CameraHealthStatus,
    CctvEvent,
    CctvKind,
    RawEvent,
    ResponderReport,
    ResponderStatus,
    SosAlarm,
    SosTrigger,
    UnitKind,
)

ScenarioName = Literal["quiet", "evening", "storm"]
SCENARIOS: Final[tuple[ScenarioName, ...]] = ("quiet", "evening", "storm")


@dataclass(frozen=True)
class Emit:
    """One message to publish at ``ts`` on ``topics.raw(source, kind, district)``."""

    ts: float
    kind: str  # topics.RAW_SOS, RAW_CCTV, RAW_CAMERA or RAW_RESPONDER
    message: RawEvent
    # The district it is published into: a camera's, a unit's home district. None for an
    # SOS: a phone knows no districts, the core that receives it places it by position.
    district: str | None = None


@dataclass(frozen=True)
class Mix:
    """Shares of each event type, and how often an SOS comes with camera evidence."""

    sos: float
    cctv: float
    fault: float
    responder: float
    burst: float  # share of SOS placed near cameras that then see something
    flap: float  # share of camera faults that flap
    storm_faults: bool  # storms knock out video: more offline and video-loss


# Most of a city's messages are units' position fixes; alarms are rare. "quiet" and
# "evening" at the default 2 events/s open about half an incident and one incident a
# minute, what a control room works through; "storm" is the load and fault test.
MIXES: Final[dict[str, Mix]] = {
    "quiet": Mix(
        sos=0.0008,
        cctv=0.003,
        fault=0.0008,
        responder=0.9954,
        burst=0.3,
        flap=0.2,
        storm_faults=False,
    ),
    "evening": Mix(
        sos=0.0016,
        cctv=0.006,
        fault=0.0014,
        responder=0.991,
        burst=0.5,
        flap=0.25,
        storm_faults=False,
    ),
    "storm": Mix(
        sos=0.12, cctv=0.38, fault=0.20, responder=0.30, burst=0.6, flap=0.4, storm_faults=True
    ),
}

_CCTV_KINDS: Final = (
    CctvKind.LOITERING,
    CctvKind.INTRUSION,
    CctvKind.CROWDING,
    CctvKind.FALL,
    CctvKind.SCREAM,
    CctvKind.FIGHT,
    CctvKind.PERSON_DOWN,
)
_CCTV_WEIGHTS: Final = (0.24, 0.14, 0.14, 0.12, 0.13, 0.12, 0.11)
_BURST_KINDS: Final = (CctvKind.SCREAM, CctvKind.SCREAM, CctvKind.FIGHT, CctvKind.PERSON_DOWN)
_TRIGGERS: Final = (SosTrigger.BUTTON, SosTrigger.SHAKE, SosTrigger.VOICE, SosTrigger.TIMER_EXPIRED)
_TRIGGER_WEIGHTS: Final = (0.5, 0.2, 0.1, 0.2)
_SURNAMES: Final = (
    ("Kim", "김"), ("Lee", "이"), ("Park", "박"), ("Choi", "최"), ("Jung", "정"),
    ("Kang", "강"), ("Cho", "조"), ("Yoon", "윤"), ("Jang", "장"), ("Lim", "임"),
    ("Han", "한"), ("Oh", "오"), ("Seo", "서"), ("Shin", "신"), ("Kwon", "권"),
    ("Hwang", "황"), ("Ahn", "안"), ("Song", "송"), ("Jeon", "전"), ("Hong", "홍"),
)  # fmt: skip
_GIVEN: Final = (
    ("Ji-woo", "지우"), ("Seo-yeon", "서연"), ("Min-ji", "민지"), ("Su-bin", "수빈"),
    ("Ha-eun", "하은"), ("Ji-min", "지민"), ("Yu-na", "유나"), ("Seo-yun", "서윤"),
    ("Da-eun", "다은"), ("Ye-jin", "예진"), ("Eun-ji", "은지"), ("Hye-jin", "혜진"),
    ("So-yeon", "소연"), ("Ji-hye", "지혜"), ("Na-yeon", "나연"), ("Soo-ah", "수아"),
    ("Min-seo", "민서"), ("Chae-won", "채원"), ("Yeon-woo", "연우"), ("Hyun-joo", "현주"),
)  # fmt: skip
_PEOPLE: Final = 5000  # phones with the app: repeats from one phone happen
_SAME_PLACE_S: Final = 3600.0  # a phone's next alarm within this comes from near the last
# How fast a responder moves on patrol, m/s, by kind, and how far it strays from its beat.
_SPEED_M_S: Final = {UnitKind.POLICE: 6.0, UnitKind.SCOUT: 1.2, UnitKind.GUARD: 1.0}
_BEAT_M: Final = 1500.0


def registration(city: City, ts: float, *, skip: Collection[str] = ()) -> Iterator[Emit]:
    """What a real deployment knows at start: every camera (online, described) and responder.

    ``skip``: units not to report (the core has them on a job: "available" would free them).
    """
    lat, lon = city.camera_lat.tolist(), city.camera_lon.tolist()
    for i, cam_id in enumerate(city.camera_ids):
        yield Emit(
            ts,
            topics.RAW_CAMERA,
            CameraHealth(
                camera_id=cam_id,
                status=CameraHealthStatus.ONLINE,
                ts=ts,
                name=city.camera_names[i],
                district=city.camera_district_name(i),
                lat=lat[i],
                lon=lon[i],
            ),
            city.camera_district_name(i),
        )
    for unit in city.responders:
        if unit.id in skip:
            continue
        yield Emit(
            ts,
            topics.RAW_RESPONDER,
            ResponderReport(
                responder_id=unit.id,
                kind=unit.kind,
                status=ResponderStatus.AVAILABLE,
                lat=unit.lat,
                lon=unit.lon,
                ts=ts,
                name=unit.name,
                district=unit.district,
            ),
            unit.district,
        )


class Scenario:
    """The event stream after registration. Iterate :meth:`events`; state lives here."""

    def __init__(
        self,
        city: City,
        *,
        seed: int,
        scenario: str,
        rate: float,
        start: float,
        source: str = "sim",
    ) -> None:
        if scenario not in MIXES:
            raise ValueError(f"unknown scenario {scenario!r}: one of {', '.join(SCENARIOS)}")
        self.city = city
        self.mix = MIXES[scenario]
        self.rate = rate
        self.start = start
        self.source = source
        self._rng = random.Random(f"{seed}:{scenario}")
        # Ids carry the seed and the start second, so a restarted simulator never
        # reuses an alarm id the core has already journaled (it would fold them).
        self._prefix = f"{source}-{seed}-{int(start)}"
        self._sos_n = itertools.count(1)
        self._event_n = itertools.count(1)
        self._tie = itertools.count()  # keeps the heap's order total and deterministic
        self._later: list[tuple[float, int, Emit]] = []
        self._faulty: set[int] = set()  # cameras currently not online
        self._last_sos: dict[int, tuple[float, float, float]] = {}  # person: t, lat, lon
        self._positions = {u.id: (u.lat, u.lon, start) for u in city.responders}
        self._off_duty: set[str] = set()
        self._held: set[str] = set()  # units on a job (console.sim.units): not patrolling

    # --- units on a job (console.sim.units.Beat) ---------------------------------------------

    def hold(self, unit_id: str) -> None:
        """The unit is on a job: no patrol fix or duty change of it until released."""
        self._held.add(unit_id)

    def release(self, unit_id: str, lat: float, lon: float, ts: float) -> None:
        """Back on patrol from where the job left it, drifting home to its beat."""
        self._held.discard(unit_id)
        if unit_id in self._positions:
            self._positions[unit_id] = (lat, lon, ts)

    # --- the stream --------------------------------------------------------------------

    def events(self, duration: float | None = None) -> Iterator[Emit]:
        """Events from ``start`` for ``duration`` seconds (None: forever), in time order."""
        end = math.inf if duration is None else self.start + duration
        t = self.start
        while True:
            t_next = t + self._rng.expovariate(self.rate) if self.rate > 0 else math.inf
            # Follow-ups that fall before the next random event go first.
            while self._later and self._later[0][0] <= t_next:
                emit = heapq.heappop(self._later)[2]
                if emit.ts >= end:
                    return
                yield emit
            if t_next >= end:
                return
            t = t_next
            yield from self._one(t)

    def _schedule(self, emit: Emit) -> None:
        heapq.heappush(self._later, (emit.ts, next(self._tie), emit))

    def _one(self, t: float) -> Iterator[Emit]:
        m, r = self.mix, self._rng.random()
        if r < m.sos:
            yield from self._sos(t)
        elif r < m.sos + m.cctv and self.city.camera_count:
            yield self._cctv(t, self._pick_online_camera(), self._cctv_kind())
        elif r < m.sos + m.cctv + m.fault and self.city.camera_count:
            yield from self._fault(t)
        elif self.city.responders:
            emit = self._responder(t)
            if emit is not None:
                yield emit

    # --- SOS -----------------------------------------------------------------------------

    def _sos(self, t: float) -> Iterator[Emit]:
        rng = self._rng
        person = rng.randrange(_PEOPLE)
        near_camera = self.city.camera_count > 0 and rng.random() < self.mix.burst
        last = self._last_sos.get(person)
        if last is not None and t - last[0] < _SAME_PLACE_S:
            # Her phone raised an alarm a moment ago: she is still about there. (A phone
            # kilometres away seconds later is what the core records as an impossible jump.)
            near_camera = False
            lat, lon = self._jitter(last[1], last[2], 50.0)
        elif near_camera:
            cam = self._pick_online_camera()
            lat, lon = self._jitter(
                float(self.city.camera_lat[cam]), float(self.city.camera_lon[cam]), 120.0
            )
        else:
            lat, lon = self._random_point()
        alarm = self._alarm(t, person, lat, lon)
        self._last_sos[person] = (t, lat, lon)
        yield Emit(t, topics.RAW_SOS, alarm)
        if near_camera:
            nearby = self.city.cameras_near(lat, lon, 250.0)[:8].tolist()
            for cam in rng.sample(nearby, k=min(len(nearby), rng.randint(1, 3))):
                if cam in self._faulty:
                    continue
                ts = t + rng.uniform(3.0, 60.0)
                kind = rng.choice(_BURST_KINDS)
                message = self._cctv_message(ts, cam, kind, 0.7)
                self._schedule(Emit(ts, topics.RAW_CCTV, message, self._district(cam)))
        if rng.random() < 0.15:
            # She presses again a little later, from a few metres away: one incident.
            ts = t + rng.uniform(20.0, 240.0)
            lat2, lon2 = self._jitter(lat, lon, 30.0)
            self._schedule(Emit(ts, topics.RAW_SOS, self._alarm(ts, person, lat2, lon2)))

    def _alarm(self, ts: float, person: int, lat: float, lon: float) -> SosAlarm:
        rng = self._rng
        # Derived from the person, so the same phone always shows the same name and number.
        who = random.Random(person)
        (sur_en, sur_ko), (given_en, given_ko) = who.choice(_SURNAMES), who.choice(_GIVEN)
        name = f"{sur_ko}{given_ko}" if who.random() < 0.4 else f"{sur_en} {given_en}"
        phone = f"010-{who.randrange(2000, 10000):04d}-{who.randrange(10000):04d}"
        return SosAlarm(
            alarm_id=f"{self._prefix}-{next(self._sos_n)}",
            source=self.source,
            device_id=f"phone-{person:05d}",
            name=name,
            lat=lat,
            lon=lon,
            accuracy_m=round(rng.choice((5.0, 8.0, 12.0, 25.0, 60.0)) * rng.uniform(0.8, 1.2), 1),
            trigger=rng.choices(_TRIGGERS, _TRIGGER_WEIGHTS)[0],
            ts=ts,
            battery=rng.randint(3, 100),
            phone=phone,
        )

    # --- CCTV --------------------------------------------------------------------------

    def _cctv_kind(self) -> CctvKind:
        return self._rng.choices(_CCTV_KINDS, _CCTV_WEIGHTS)[0]

    def _cctv(self, t: float, cam: int, kind: CctvKind) -> Emit:
        message = self._cctv_message(t, cam, kind, 0.5)
        if message.confidence < 0.6 and self._rng.random() < 0.3:
            # The analytics takes a weak detection back a few seconds later.
            ts = t + self._rng.uniform(2.0, 20.0)
            withdrawn = CctvEvent(
                event_id=message.event_id,
                camera_id=message.camera_id,
                kind=kind,
                confidence=message.confidence,
                ts=ts,
                withdrawn=True,
            )
            self._schedule(Emit(ts, topics.RAW_CCTV, withdrawn, self._district(cam)))
        return Emit(t, topics.RAW_CCTV, message, self._district(cam))

    def _cctv_message(self, ts: float, cam: int, kind: CctvKind, low: float) -> CctvEvent:
        event_id = f"ev-{self._prefix}-{next(self._event_n)}"
        cam_id = self.city.camera_ids[cam]
        return CctvEvent(
            event_id=event_id,
            camera_id=cam_id,
            kind=kind,
            confidence=round(self._rng.uniform(low, 0.99), 2),
            ts=ts,
            snapshot_url=f"http://cctv.sim.invalid/{cam_id}/{event_id}.jpg",
        )

    # --- camera faults -----------------------------------------------------------------

    def _fault(self, t: float) -> Iterator[Emit]:
        rng, cam = self._rng, self._pick_online_camera()
        if self.mix.storm_faults:
            status = rng.choices(
                (
                    CameraHealthStatus.OFFLINE,
                    CameraHealthStatus.VIDEO_LOSS,
                    CameraHealthStatus.TAMPERED,
                ),
                (0.6, 0.35, 0.05),
            )[0]
        else:
            status = rng.choices(
                (
                    CameraHealthStatus.OFFLINE,
                    CameraHealthStatus.VIDEO_LOSS,
                    CameraHealthStatus.TAMPERED,
                ),
                (0.6, 0.2, 0.2),
            )[0]
        self._faulty.add(cam)
        yield self._health(t, cam, status)
        if status is CameraHealthStatus.OFFLINE and rng.random() < self.mix.flap:
            # A flapping camera: a few short drops in a row, then it stays up.
            ts = t
            for _ in range(rng.randint(2, 4)):
                ts += rng.uniform(5.0, 40.0)
                self._schedule(self._health(ts, cam, CameraHealthStatus.ONLINE))
                ts += rng.uniform(5.0, 40.0)
                self._schedule(self._health(ts, cam, CameraHealthStatus.OFFLINE))
            ts += rng.uniform(5.0, 40.0)
        else:
            ts = t + rng.uniform(30.0, 600.0)
        self._schedule(self._health(ts, cam, CameraHealthStatus.ONLINE, recovered=True))

    def _health(
        self, ts: float, cam: int, status: CameraHealthStatus, *, recovered: bool = False
    ) -> Emit:
        message = CameraHealth(camera_id=self.city.camera_ids[cam], status=status, ts=ts)
        if recovered:
            # Marks the camera healthy again when this is generated, not when sent:
            # cheap, and only used to steer new events towards working cameras.
            self._faulty.discard(cam)
        return Emit(ts, topics.RAW_CAMERA, message, self._district(cam))

    def _district(self, cam: int) -> str:
        """The camera's district: where its messages are published."""
        return self.city.camera_district_name(cam)

    def _pick_online_camera(self) -> int:
        n = self.city.camera_count
        for _ in range(8):
            cam = self._rng.randrange(n)
            if cam not in self._faulty:
                return cam
        return self._rng.randrange(n)

    # --- responders ----------------------------------------------------------------------

    def _responder(self, t: float) -> Emit | None:
        rng = self._rng
        unit = rng.choice(self.city.responders)
        lat, lon, since = self._positions[unit.id]
        # Moves at most at its kind's speed since its last report, and drifts back
        # towards its beat when it has wandered off it.
        step = _SPEED_M_S[unit.kind] * min(t - since, 120.0)
        lat, lon = self._jitter(lat, lon, step)
        if abs(lat - unit.lat) * seoul.M_PER_DEG_LAT > _BEAT_M:
            lat = round(lat + (unit.lat - lat) * 0.2, 6)
        if abs(lon - unit.lon) * seoul.M_PER_DEG_LON > _BEAT_M:
            lon = round(lon + (unit.lon - lon) * 0.2, 6)
        changed = rng.random() < 0.03
        if unit.id in self._held:
            # On a job, it reports for itself (console.sim.units). The same draws were
            # made, so the rest of the stream does not depend on who is on a job.
            return None
        self._positions[unit.id] = (lat, lon, t)
        # Now and then a unit goes off duty (a break, end of shift) and comes back.
        if changed:
            self._off_duty.symmetric_difference_update({unit.id})
        status = (
            ResponderStatus.OFF_DUTY if unit.id in self._off_duty else ResponderStatus.AVAILABLE
        )
        # Between those changes a report is a position fix only: "available" would release
        # a unit the core has just dispatched, before the simulator has heard of it.
        return Emit(
            t,
            topics.RAW_RESPONDER,
            ResponderReport(
                responder_id=unit.id,
                kind=unit.kind,
                status=status,
                lat=lat,
                lon=lon,
                ts=t,
                position_only=not changed,
                district=unit.district,
            ),
            unit.district,
        )

    # --- geometry ------------------------------------------------------------------------

    def _jitter(self, lat: float, lon: float, metres: float) -> tuple[float, float]:
        r = metres * math.sqrt(self._rng.random())
        a = self._rng.uniform(0.0, 2 * math.pi)
        lat2 = min(seoul.LAT_MAX, max(seoul.LAT_MIN, lat + r * math.sin(a) / seoul.M_PER_DEG_LAT))
        lon2 = min(seoul.LON_MAX, max(seoul.LON_MIN, lon + r * math.cos(a) / seoul.M_PER_DEG_LON))
        return round(lat2, 6), round(lon2, 6)

    def _random_point(self) -> tuple[float, float]:
        """Somewhere people are: near a random camera or responder, or a district centre."""
        if self.city.camera_count:
            cam = self._rng.randrange(self.city.camera_count)
            return self._jitter(
                float(self.city.camera_lat[cam]), float(self.city.camera_lon[cam]), 800.0
            )
        d = self._rng.choice(seoul.DISTRICTS)
        return self._jitter(d.lat, d.lon, d.radius_m)


def generate(
    city: City,
    *,
    seed: int,
    scenario: str,
    rate: float,
    start: float,
    duration: float | None,
    source: str = "sim",
    register: bool = True,
) -> Iterator[Emit]:
    """Registration at ``start`` (unless ``register`` is false), then the scenario's events."""
    if register:
        yield from registration(city, start)
    yield from Scenario(
        city, seed=seed, scenario=scenario, rate=rate, start=start, source=source
    ).events(duration)
