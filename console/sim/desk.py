"""Simulated colleagues: other operators of the same control room, ``desk-1`` .. ``desk-N``.

They take the incidents that have waited unowned (``[simulate] desk_pick_s``, a P1
``desk_pick_p1_s``: the human gets the first pick) and work them as an operator at a
console would, one step every ``desk_think_s`` or so: acknowledge, then

- dispatch the first recommended unit that is free, and resolve some minutes after it
  is on scene (``desk_on_scene_s``), with a disposition;
- or, after a look at the cameras or a call back, close it as a false alarm or resolve
  it without a unit (most low-priority CCTV events);
- or, for a camera fault, resolve it once the camera is back (or a ticket is raised).

They send real :class:`~protocols.schemas.Command`\\ s, so the core checks and journals
every step, and a refusal (someone else took it, no unit free) is taken in their stride.
Pure: the core's state comes in as a :class:`~console.sim.picture.Picture`, replies and
the time as arguments, and the commands to send go out; the live simulator and the
accelerated shift test run this same code.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass
from typing import Final

import msgspec

from console.config import SimulateConfig
from console.sim.picture import Picture
from protocols.schemas import Action, Command, IncidentKind, IncidentState, IncidentStatus, Reply

REPLY_TIMEOUT_S: Final = 30.0  # no reply by then: the same command again (the core folds it)
WAIT_POLL_S: Final = 5.0  # how often a colleague looks at an incident waiting for its unit
FAULT_WAIT_S: Final = 600.0  # a camera not back by then gets a maintenance ticket
MAX_TRIES: Final = 4  # refusals (or no unit free) before a colleague gives an incident up
PROMISED_S: Final = 15.0  # a unit just dispatched is not offered again before its state says so


class Plan(enum.Enum):
    DISPATCH = "dispatch"  # a unit goes; resolved after some minutes on scene
    FALSE_ALARM = "false-alarm"  # a look at the cameras or a call back: nothing there
    WATCH = "watch"  # watched on camera and resolved, no unit needed
    FAULT = "fault"  # a camera fault: resolved once the camera is back


@dataclass
class Job:
    """One incident a colleague works."""

    incident_id: str
    operator: str
    plan: Plan
    next_at: float
    stay_s: float  # how long its unit stays on scene
    pending: Command | None = None  # sent, no reply yet
    sent_at: float = 0.0
    on_scene_since: float | None = None
    tries: int = 0


# (kind, priority) → the plans a colleague may choose, with their weights.
_SOS: Final = ((Plan.DISPATCH, 0.85), (Plan.FALSE_ALARM, 0.15))
_URGENT_CCTV: Final = ((Plan.DISPATCH, 0.45), (Plan.FALSE_ALARM, 0.55))
_P3_CCTV: Final = ((Plan.DISPATCH, 0.3), (Plan.WATCH, 0.7))
_P4_CCTV: Final = ((Plan.FALSE_ALARM, 0.6), (Plan.WATCH, 0.4))

_RESOLVED_SOS: Final = ("escorted home", "assisted on scene", "person safe, no action")
_RESOLVED_CCTV: Final = ("assisted on scene", "no trace at location", "handed to police")
_FALSE_SOS: Final = "called back: pressed by accident, she is safe"
_FALSE_CCTV: Final = ("camera check: nothing found", "camera check: no one in distress")
_WATCHED: Final = ("watched on camera: no action needed", "watched on camera: dispersed")
_NO_UNIT: Final = "no unit free: handed to police"


def operators(count: int) -> list[str]:
    """The colleagues' operator ids."""
    return [f"desk-{k}" for k in range(1, count + 1)]


class Desk:
    """The simulated colleagues and the incidents each of them works."""

    def __init__(self, settings: SimulateConfig, *, session: str, seed: int = 0) -> None:
        self.s = settings
        self.operators = operators(settings.desk)
        self.session = session  # in every cmd_id, so a restarted simulator reuses none
        self.jobs: dict[str, Job] = {}
        self.given_up: set[str] = set()
        self._rng = random.Random(f"desk:{seed}")
        self._seq = 0
        self._by_cmd: dict[str, str] = {}  # cmd_id → incident id, until its reply
        self._promised: dict[str, float] = {}  # unit → until when it is not offered again
        self._outbox: list[Command] = []

    # --- inputs --------------------------------------------------------------------------

    def reply(self, reply: Reply, now: float) -> None:
        """The core's answer to one of our commands."""
        incident_id = self._by_cmd.pop(reply.cmd_id, None)
        job = self.jobs.get(incident_id) if incident_id is not None else None
        if job is None or job.pending is None or job.pending.cmd_id != reply.cmd_id:
            return
        job.pending = None
        if reply.ok:
            return
        job.tries += 1
        job.next_at = now + self._think()
        if job.tries >= MAX_TRIES:
            self._give_up(job, now)

    # --- the step ------------------------------------------------------------------------

    def commands(self, now: float, picture: Picture) -> list[Command]:
        """What the colleagues send at ``now``: their next step on each incident they work,
        the first step on the incidents they take now, and resends of unanswered ones."""
        out, self._outbox = self._outbox, []
        self._promised = {u: t for u, t in self._promised.items() if t > now}
        for job in list(self.jobs.values()):
            inc = picture.incidents.get(job.incident_id)
            if inc is None or inc.owner not in (None, job.operator):
                self._drop(job)  # closed, or someone else has it
            elif job.pending is not None:
                if now - job.sent_at >= REPLY_TIMEOUT_S:
                    job.sent_at = now
                    out.append(job.pending)
            elif now >= job.next_at:
                command = self._next(job, inc, now, picture)
                if command is not None:
                    out.append(self._send(job, command, now))
        for inc in self._waiting(now, picture):
            taken = self._take(inc, now)
            if taken is None:
                break  # everyone is busy
            command = self._next(taken, inc, now, picture)
            if command is not None:
                out.append(self._send(taken, command, now))
        return out

    def _waiting(self, now: float, picture: Picture) -> list[IncidentState]:
        """Unowned incidents that have waited long enough, most urgent and oldest first."""
        found = [
            inc
            for inc in picture.incidents.values()
            if inc.owner is None
            and inc.id not in self.jobs
            and inc.id not in self.given_up
            and now - inc.created
            >= (self.s.desk_pick_p1_s if inc.priority == 1 else self.s.desk_pick_s)
        ]
        found.sort(key=lambda inc: (inc.priority, inc.created, inc.id))
        return found

    def _take(self, inc: IncidentState, now: float) -> Job | None:
        load = {op: 0 for op in self.operators}
        for job in self.jobs.values():
            load[job.operator] += 1
        operator = min(self.operators, key=lambda op: load[op], default=None)
        if operator is None or (load[operator] >= self.s.desk_max_each and inc.priority > 1):
            return None  # everyone is busy; a P1 is taken all the same
        job = Job(
            incident_id=inc.id,
            operator=operator,
            plan=self._plan(inc),
            next_at=now,
            stay_s=self.s.desk_on_scene_s * self._rng.uniform(0.5, 1.5),
        )
        self.jobs[inc.id] = job
        return job

    def _plan(self, inc: IncidentState) -> Plan:
        if inc.kind is IncidentKind.CAMERA_FAULT:
            return Plan.FAULT
        if inc.kind is IncidentKind.PUBLIC_ALERT:
            return Plan.WATCH
        if inc.kind is IncidentKind.SOS:
            choices = _SOS
        elif inc.priority <= 2:
            choices = _URGENT_CCTV
        elif inc.priority == 3:
            choices = _P3_CCTV
        else:
            choices = _P4_CCTV
        plans = [plan for plan, _ in choices]
        return self._rng.choices(plans, [weight for _, weight in choices])[0]

    def _next(self, job: Job, inc: IncidentState, now: float, picture: Picture) -> Command | None:
        """The colleague's next step on ``inc``, or None (and when to look again)."""
        job.next_at = now + self._think()
        if inc.status is IncidentStatus.NEW:
            return self._command(job, Action.ACK)
        if inc.owner is None:
            return self._command(job, Action.CLAIM)
        if job.plan is Plan.FALSE_ALARM:
            sos = inc.kind is IncidentKind.SOS
            disposition = _FALSE_SOS if sos else self._rng.choice(_FALSE_CCTV)
            return self._command(job, Action.FALSE_ALARM, disposition=disposition)
        if job.plan is Plan.WATCH:
            return self._command(job, Action.RESOLVE, disposition=self._rng.choice(_WATCHED))
        if job.plan is Plan.FAULT:
            back = bool(inc.events) and inc.events[-1].kind == "online"
            if back or now - inc.created >= FAULT_WAIT_S:
                disposition = "camera back online" if back else "maintenance ticket raised"
                return self._command(job, Action.RESOLVE, disposition=disposition)
            job.next_at = now + WAIT_POLL_S * 6
            return None
        return self._dispatch_step(job, inc, now, picture)

    def _dispatch_step(
        self, job: Job, inc: IncidentState, now: float, picture: Picture
    ) -> Command | None:
        if inc.status is IncidentStatus.ON_SCENE:
            if job.on_scene_since is None:
                job.on_scene_since = now
            if now - job.on_scene_since < job.stay_s:
                job.next_at = job.on_scene_since + job.stay_s
                return None
            return self._command(job, Action.RESOLVE, disposition=self._resolution(inc))
        if inc.responders:
            job.next_at = now + WAIT_POLL_S  # its unit is on the way
            return None
        free = [
            r
            for r in inc.recommended
            if picture.available(r.responder_id) and r.responder_id not in self._promised
        ]
        if not free:
            job.tries += 1
            if job.tries >= MAX_TRIES:
                return self._command(job, Action.RESOLVE, disposition=_NO_UNIT)
            return None
        # The soonest there: what the console preselects (the recommendations may be stale,
        # so units the picture shows taken since are passed over).
        unit = min(free, key=lambda r: (r.eta_s, r.distance_m, r.responder_id)).responder_id
        self._promised[unit] = now + PROMISED_S
        return self._command(job, Action.DISPATCH, responder_id=unit)

    def _resolution(self, inc: IncidentState) -> str:
        if inc.kind is IncidentKind.SOS:
            return self._rng.choice(_RESOLVED_SOS)
        if "down" in inc.title.lower() or "fall" in inc.title.lower():
            return "medical assistance"
        return self._rng.choice(_RESOLVED_CCTV)

    # --- bookkeeping -----------------------------------------------------------------------

    def _think(self) -> float:
        return self.s.desk_think_s * self._rng.uniform(0.5, 1.5)

    def _command(self, job: Job, action: Action, **fields: str) -> Command:
        self._seq += 1
        return Command(
            cmd_id=f"{job.operator}-{self.session}-{self._seq}",
            operator=job.operator,
            action=action,
            ts=job.next_at,  # replaced by the time it is sent
            incident_id=job.incident_id,
            responder_id=fields.get("responder_id"),
            disposition=fields.get("disposition"),
        )

    def _send(self, job: Job, command: Command, now: float) -> Command:
        command = msgspec.structs.replace(command, ts=now)
        job.pending, job.sent_at = command, now
        self._by_cmd[command.cmd_id] = job.incident_id
        return command

    def _drop(self, job: Job) -> None:
        del self.jobs[job.incident_id]
        if job.pending is not None:
            self._by_cmd.pop(job.pending.cmd_id, None)

    def _give_up(self, job: Job, now: float) -> None:
        """Refused too often: leave it to the others, unowned, and never take it again."""
        self._drop(job)
        self.given_up.add(job.incident_id)
        self._seq += 1
        release = Command(
            cmd_id=f"{job.operator}-{self.session}-{self._seq}",
            operator=job.operator,
            action=Action.RELEASE,
            ts=now,
            incident_id=job.incident_id,
        )
        self._outbox.append(release)
