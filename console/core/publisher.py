"""Coalesced, retained state publication.

Effects mark things dirty; every publish interval each dirty incident, district
and responder is published once, however many events touched it meanwhile.
Replies and receipts are not coalesced: they go out right after their batch
is committed.

A district's cameras go out in pages of ``CAMERA_PAGE`` (sorted by id, retained
under ``topics.state_camera_page``): a camera that changes republishes its page,
about 25 KB, not the district's whole list (410 KB at 4,000 cameras, which every
console had to decode on its UI loop). When a district's membership changes (a
camera registered or moved), the pages whose cameras shifted go out, and, if
the page count changed, every page (so they agree on ``pages``); pages past the
end are cleared. Under a storm (the simulator's storm mix at 5,000 events/s
changes ~2,700 cameras a second, in every district) a district's pages go out
at most every ``CAMERA_INTERVAL_S``: a camera grid a second behind instead of
five times the bytes, for the core to build and for every console to decode.

An incident and a unit go out under their home district (``Engine.incident_home``,
``responder_home``: where it was raised, where it was first reported), which never
changes, so a seat scoped to districts reads its own and a moved one leaves nothing
stale behind (docs/partitions.md).

The recently closed incidents go out as one retained list per home district
(``topics.state_closed``, ``console.engine.closed``): again after an incident closes,
and when its oldest record leaves the 24-hour window; under a storm of closes at most
every ``CLOSED_INTERVAL_S``, lists of up to 200 records built and sent once, not per
close. A district whose last record left the window gets an empty list.

A partition's core publishes the camera pages and closed lists of its own districts
(``EngineSettings.districts``; all, unpartitioned) and, the home partition's alone
(``scope_publication``), of ``unknown``: two cores must never overwrite one district's
retained list. The rest (a Frigate camera the home core registered across the line) is
withheld, logged once per district. Only own units are published (never a neighbour's,
read across the border or borrowed); a unit now another partition's has its state under
its old home cleared (``ResponderGone``).

Every topic is built by ``protocols.topics``, which refuses (ValueError) a level that
is not an identifier. Such a message is skipped, counted in ``refused_topics`` and
logged once per kind; the rest of the batch goes out. One bad value must never stop
publication (the publish loop's death would stop the core).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from console.engine.closed import expires_at
from console.engine.effects import (
    AskPartition,
    CameraChanged,
    Effect,
    IncidentChanged,
    IncidentClosed,
    ResponderChanged,
    ResponderGone,
    SendReceipt,
    SendReply,
)
from console.engine.engine import Engine
from protocols import codec, topics
from protocols.camera_pages import CAMERA_PAGE, camera_page, page_count
from protocols.mqtt import Transport
from protocols.schemas import ClosedList, Command, Receipt, Reply, Summary
from protocols.shift import ShiftReport

log = logging.getLogger("ansim.core.publisher")

STATE_CHUNK = 32  # incident states computed together, between two looks at the budget
CAMERA_INTERVAL_S = 1.0  # a district's changed pages go out at most this often
CLOSED_INTERVAL_S = 1.0  # the closed list goes out at most this often
UNKNOWN = "unknown"  # the district of what is outside every district: the home partition's


@dataclass
class RefusedTopics:
    """Messages not published because a value was not an identifier (``topics.level``)."""

    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def skip(self, kind: str, error: ValueError) -> None:
        self.total += 1
        seen = self.by_kind.get(kind, 0)
        self.by_kind[kind] = seen + 1
        if not seen:  # once per kind: a flood of bad values must not flood the log
            log.error("a %s was not published: %s (further ones are only counted)", kind, error)


refused_topics = RefusedTopics()


def topic_or_skip(kind: str, build: Callable[..., str], *args: object) -> str | None:
    """``build(*args)``, or None (counted, logged once per kind) if a level is refused."""
    try:
        return build(*args)
    except ValueError as exc:
        refused_topics.skip(kind, exc)
        return None


@dataclass
class Dirty:
    incidents: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)
    # Districts to publish. Those also in ``cameras`` publish only the pages holding the
    # cameras named there (and any page their membership shifted); the others, e.g. from
    # ``everything()`` or merged back after a failed publish, publish every page.
    districts: set[str] = field(default_factory=set)
    cameras: dict[str, set[str]] = field(default_factory=dict)
    responders: set[str] = field(default_factory=set)
    closed_list: bool = False  # the list of recently closed incidents is due
    gone: set[tuple[str, str]] = field(default_factory=set)  # (unit, old home): ResponderGone

    def __bool__(self) -> bool:
        return any((self.incidents, self.closed, self.districts, self.responders,
                    self.closed_list, self.gone))  # fmt: skip


@dataclass
class Outbox:
    """What a committed batch owes the world."""

    replies: list[Reply] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    # To other partitions' cores (LEND, RETURN): the topic and the command, addressed.
    commands: list[tuple[str, Command]] = field(default_factory=list)
    asks: list[AskPartition] = field(default_factory=list)  # not addressed yet (the core does)


def sort_effects(effects: Iterable[Effect], dirty: Dirty, outbox: Outbox) -> None:
    for effect in effects:
        match effect:
            case IncidentChanged():
                dirty.incidents.add(effect.incident_id)
                dirty.closed.discard(effect.incident_id)
            case IncidentClosed():
                dirty.closed.add(effect.incident_id)
                dirty.incidents.discard(effect.incident_id)
                dirty.closed_list = True
            case CameraChanged():
                dirty.districts.add(effect.district)
                dirty.cameras.setdefault(effect.district, set()).add(effect.camera_id)
            case ResponderChanged():
                dirty.responders.add(effect.responder_id)
            case ResponderGone():
                dirty.gone.add((effect.responder_id, effect.home))
            case SendReply():
                outbox.replies.append(effect.reply)
            case SendReceipt():
                outbox.receipts.append(effect.receipt)
            case AskPartition():
                outbox.asks.append(effect)
            case _:
                pass  # escalations and bells are visible through the incident state


async def publish_outbox(transport: Transport, outbox: Outbox) -> None:
    items: list[tuple[str, bytes, bool]] = []
    for reply in outbox.replies:
        if (topic := topic_or_skip("reply", topics.reply, reply.operator)) is not None:
            items.append((topic, codec.encode(reply), False))
    for r in outbox.receipts:
        if (topic := topic_or_skip("receipt", topics.receipt, r.source, r.alarm_id)) is not None:
            items.append((topic, codec.encode(r), False))
    items += [(topic, codec.encode(command), False) for topic, command in outbox.commands]
    if items:
        await _publish_all(transport, items)


async def publish_state(
    transport: Transport,
    engine: Engine,
    dirty: Dirty,
    now: float,
    *,
    backlog: OrderedDict[str, None] | None = None,
    budget_s: float | None = None,
) -> int:
    """Publish every dirty thing once, retained. Returns how many messages went out.

    With a ``backlog`` (incident ids waiting, oldest first), the dirty incidents join it
    and states are computed for about ``budget_s`` seconds at most (None: all of them);
    the rest wait in the backlog for the next tick, oldest first, so a storm spreads its
    publication over ticks instead of stalling the receive path; P1 incidents join it at
    the head, so an SOS is on the screens within a tick or two whatever waits. Closed incidents
    and responders are always published at once (cheap); with a budget, a district's
    camera pages wait until ``CAMERA_INTERVAL_S`` after its last ones. If publishing
    fails, the incidents taken are put back at the head of the backlog, and the
    districts taken will publish every page.
    """
    encode = codec.encode
    urgent = _urgent_queue(engine)
    if backlog is None:
        backlog = OrderedDict.fromkeys(dirty.incidents)
    else:
        for incident_id in dirty.closed:
            backlog.pop(incident_id, None)
            urgent.pop(incident_id, None)
        # A P1 (an SOS) is not queued behind a storm's CCTV backlog: the P1s go out
        # first, among themselves in the order they came.
        for incident_id in engine.urgent_incidents(dirty.incidents):
            urgent.setdefault(incident_id, None)
            backlog.pop(incident_id, None)
        for incident_id in dirty.incidents:
            if incident_id not in urgent:
                backlog.setdefault(incident_id, None)
    deadline = math.inf if budget_s is None else time.perf_counter() + budget_s
    taken_ids: list[str] = []
    items: list[tuple[str, bytes, bool]] = []
    while (urgent or backlog) and time.perf_counter() <= deadline:
        # 32 at a time: their nearest-responder and shelter questions are asked at once.
        queue = urgent if urgent else backlog
        chunk = [queue.popitem(last=False)[0] for _ in range(min(STATE_CHUNK, len(queue)))]
        # The topic of each; a refused one is dropped before its state is computed.
        named: dict[str, str] = {}
        for incident_id in chunk:
            if (topic := _incident_topic(engine, incident_id)) is not None:
                named[incident_id] = topic
        taken_ids += named
        if named:
            states = engine.incident_states(list(named), now)
            items += [
                (topic, encode(s), True) for topic, s in zip(named.values(), states, strict=True)
            ]
    # An empty retained payload deletes the retained message: closed incidents leave the queue.
    for incident_id in dirty.closed:
        if (topic := _incident_topic(engine, incident_id)) is not None:
            items.append((topic, b"", True))
    scope = _scope(engine)
    cams = _camera_state(engine)
    for district in dirty.districts:
        if scope.publishes("camera pages", district):
            cams.wait(district, dirty.cameras.get(district))
    # A budget means the core's regular tick: changed pages wait out the interval. Without
    # one (the shutdown flush, tests) everything goes now; a whole district (after a start,
    # a reconnect or a failed publish) never waits.
    taken = cams.take(now, throttle=budget_s is not None)
    for district, changed in taken:
        items += camera_pages(engine, district, now, changed)
    gone, scope.gone = scope.gone | dirty.gone, set()
    items += _gone_units(engine, gone)
    for responder_id in dirty.responders:
        home = engine.responder_home(responder_id)
        if home is None or not engine.ctx.own_unit(responder_id):
            continue  # a neighbour's (context, or borrowed): its owner publishes it
        if topic := topic_or_skip("responder", topics.state_responder, home, responder_id):
            items.append((topic, encode(engine.responder_state(responder_id)), True))
    closed = _closed_state(engine)
    closed.due = closed.due or dirty.closed_list
    closed_taken = closed.take(now, throttle=budget_s is not None)
    if closed_taken:
        items += closed.lists(engine, now)
    try:
        await _publish_all(transport, items)
    except BaseException:
        for incident_id in reversed(taken_ids):
            backlog[incident_id] = None
            backlog.move_to_end(incident_id, last=False)
        for district, _ in taken:
            cams.wait(district, None)  # which pages got out is unknown: all of them again
        closed.due = closed.due or closed_taken
        scope.gone |= gone  # not in ``Dirty`` (the core merges back what it knows of)
        raise
    return len(items)


@dataclass
class _CameraState:
    """What the publisher remembers of an engine's camera pages."""

    # The camera ids of each district, in order, as last published.
    layouts: dict[str, tuple[str, ...]] = field(default_factory=dict)
    published_at: dict[str, float] = field(default_factory=dict)
    # Districts waiting for their interval: the cameras changed (None: every page).
    waiting: dict[str, set[str] | None] = field(default_factory=dict)

    def wait(self, district: str, changed: set[str] | None) -> None:
        if district not in self.waiting:
            self.waiting[district] = None if changed is None else set(changed)
            return
        current = self.waiting[district]
        if current is None or changed is None:
            self.waiting[district] = None
        else:
            current |= changed

    def take(self, now: float, *, throttle: bool) -> list[tuple[str, set[str] | None]]:
        out = []
        for district, changed in list(self.waiting.items()):
            since = now - self.published_at.get(district, -math.inf)
            if throttle and changed is not None and 0 <= since < CAMERA_INTERVAL_S:
                continue
            del self.waiting[district]
            self.published_at[district] = now
            out.append((district, changed))
        return out


@dataclass
class _ClosedState:
    """When the closed list goes out again."""

    due: bool = False  # an incident closed (or everything is published) since the last list
    published_at: float = -math.inf
    expires_at: float = math.inf  # the oldest record of the last list leaves the window

    sent: set[str] = field(default_factory=set)  # districts whose last list was not empty

    def take(self, now: float, *, throttle: bool) -> bool:
        """Whether the lists go out now; if so they are no longer due."""
        if not (self.due or now >= self.expires_at):
            return False
        if throttle and 0 <= now - self.published_at < CLOSED_INTERVAL_S:
            return False
        self.due, self.published_at = False, now
        return True

    def lists(self, engine: Engine, now: float) -> list[tuple[str, bytes, bool]]:
        """Each home district's list, and an empty one where the last list was not.

        Only the partition's own districts' (``_Scope``): another core publishes the
        list of a district it owns, and one list per topic must hold all of it."""
        scope = _scope(engine)
        lists = {
            d: x for d, x in engine.closed_lists(now).items() if scope.publishes("closed list", d)
        }
        empty = ClosedList(ts=now)
        self.expires_at = min((expires_at(x) for x in lists.values()), default=math.inf)
        items: list[tuple[str, bytes, bool]] = []
        for district in sorted(self.sent | set(lists)):
            topic = topic_or_skip("closed list", topics.state_closed, district)
            if topic is not None:
                items.append((topic, codec.encode(lists.get(district, empty)), True))
        self.sent = set(lists)
        return items


@dataclass
class _Scope:
    """Whose camera pages and closed lists this core publishes: its partition's districts
    (empty: all), and ``unknown`` if it is the home partition's (not told: as before)."""

    districts: frozenset[str]
    partition: str
    unknown: bool = True
    withheld: set[tuple[str, str]] = field(default_factory=set)  # (what, district) logged
    # Units now another partition's whose old state topic is not cleared yet: (id, home).
    gone: set[tuple[str, str]] = field(default_factory=set)

    def publishes(self, what: str, district: str) -> bool:
        if not self.districts or district in self.districts:
            return True
        if district == UNKNOWN and self.unknown:
            return True
        if (what, district) not in self.withheld:  # once: it is withheld at every tick
            self.withheld.add((what, district))
            log.warning(
                "%s of %s not published here: %s is not a district of partition %s%s",
                what, district, district, self.partition,
                "" if district == UNKNOWN else " (its own partition's core publishes it)",
            )  # fmt: skip
        return False


def scope_publication(engine: Engine, *, home: bool) -> None:
    """Whether ``engine`` is the home partition's, which alone publishes ``unknown``'s."""
    _scope(engine).unknown = home


def _gone_units(engine: Engine, gone: set[tuple[str, str]]) -> list[tuple[str, bytes, bool]]:
    """Clear the old state topics of units now another partition's (not of one that is
    this partition's again, under that home)."""
    items: list[tuple[str, bytes, bool]] = []
    for responder_id, home in sorted(gone):
        if engine.ctx.own_unit(responder_id) and engine.responder_home(responder_id) == home:
            continue
        if topic := topic_or_skip("responder", topics.state_responder, home, responder_id):
            items.append((topic, b"", True))
    return items


# Keyed weakly by the engine, so a rebuilt engine starts afresh (and publishes all).
_CAMERA_STATES: weakref.WeakKeyDictionary[Engine, _CameraState] = weakref.WeakKeyDictionary()
_CLOSED_STATES: weakref.WeakKeyDictionary[Engine, _ClosedState] = weakref.WeakKeyDictionary()
# The P1 incidents waiting to be published, ahead of the backlog (publish_state).
_URGENT: weakref.WeakKeyDictionary[Engine, OrderedDict[str, None]] = weakref.WeakKeyDictionary()
_SCOPES: weakref.WeakKeyDictionary[Engine, _Scope] = weakref.WeakKeyDictionary()


def _camera_state(engine: Engine) -> _CameraState:
    return _CAMERA_STATES.setdefault(engine, _CameraState())


def _closed_state(engine: Engine) -> _ClosedState:
    return _CLOSED_STATES.setdefault(engine, _ClosedState())


def _urgent_queue(engine: Engine) -> OrderedDict[str, None]:
    return _URGENT.setdefault(engine, OrderedDict())


def _scope(engine: Engine) -> _Scope:
    scope = _SCOPES.get(engine)
    if scope is None:
        scope = _SCOPES[engine] = _Scope(engine.settings.districts, engine.settings.partition)
    return scope


def _incident_topic(engine: Engine, incident_id: str) -> str | None:
    home = engine.incident_home(incident_id)
    if home is None:
        return None
    return topic_or_skip("incident", topics.state_incident, home, incident_id)


def camera_pages(
    engine: Engine, district: str, now: float, changed: set[str] | None = None
) -> list[tuple[str, bytes, bool]]:
    """The retained page messages to publish for a district.

    ``changed``: the camera ids known to have changed; None republishes every page
    (and clears the district's whole-list topic of the old layout, which a console
    would otherwise still receive)."""
    if topic_or_skip("district", topics.state_cameras, district) is None:
        return []  # every page's topic would be refused as well
    whole = engine.district_cameras(district, now)
    cells = whole.cameras
    ids = tuple(c.id for c in cells)
    layouts = _camera_state(engine).layouts
    old = layouts.get(district)
    layouts[district] = ids
    count = page_count(len(cells))
    old_count = page_count(len(old)) if old is not None else None
    every = changed is None or old is None or old_count != count
    items: list[tuple[str, bytes, bool]] = []
    if changed is None:
        items.append((topics.state_cameras(district), b"", True))
    for page in range(count):
        lo, hi = page * CAMERA_PAGE, (page + 1) * CAMERA_PAGE
        if not every:
            assert old is not None and changed is not None
            page_ids = ids[lo:hi]
            if page_ids == old[lo:hi] and changed.isdisjoint(page_ids):
                continue
        message = camera_page(district, cells[lo:hi], page, count, now)
        items.append((topics.state_camera_page(district, page), codec.encode(message), True))
    if old_count is not None:
        items += [
            (topics.state_camera_page(district, p), b"", True) for p in range(count, old_count)
        ]
    return items


async def _publish_all(transport: Transport, items: list[tuple[str, bytes, bool]]) -> None:
    """One batch (one future for all the PUBACKs), not a gather of thousands of publishes."""
    many = getattr(transport, "publish_many", None)
    if many is not None:
        await many(items)
    else:  # a stand-in transport (tests) with publish() only
        await asyncio.gather(*(transport.publish(t, p, qos=1, retain=r) for t, p, r in items))


async def publish_summary(transport: Transport, summary: Summary) -> None:
    topic = topics.state_summary(summary.partition or topics.DEFAULT_PARTITION)
    await _publish_all(transport, [(topic, codec.encode(summary), True)])


async def publish_shift(transport: Transport, report: ShiftReport) -> None:
    """The supervisor's figures, retained: a pane opened later reads the last ones."""
    topic = topics.state_shift(report.partition or topics.DEFAULT_PARTITION)
    await _publish_all(transport, [(topic, codec.encode(report), True)])


def everything(engine: Engine) -> Dirty:
    """All state, for the first publication after a start or a (re)connect.

    Also a retained delete for every recently closed incident: a broker that missed a
    close (it was down, or the parties were on another one meanwhile) still holds that
    incident as open, and consoles take the retained picture as the whole truth."""
    return Dirty(
        incidents=set(engine.open_incident_ids()),
        closed=set(engine.closed_incident_ids()),
        districts=set(engine.districts()),
        responders=set(engine.responder_ids()),
        closed_list=True,
    )
