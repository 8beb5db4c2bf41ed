"""The console's picture of the world, built from retained state topics.

Pure (no Textual, no I/O, no clock): the link feeds it topic + payload, the UI
drains what changed at its own frame rate. Open incidents are kept as a sorted
list of keys (standing, escalated first, age, id; see ``sort_key``) kept with ``bisect``,
so one update costs O(log n) plus a memmove and a view of 100,000 incidents is
never re-sorted as a whole; a filtered view is maintained the same way and
rebuilt only when the filter itself changes.

Cameras arrive as pages of a district (``DistrictCameras.page`` of ``pages``),
kept as received and decoded only when read: ``cameras`` (the camera pane) and
``camera_district`` (one district, for the map) join a district's pages into
one list. Under a storm thousands of cameras change a second; decoding their
pages as they come cost the UI's loop more than everything else together,
while the queue, on screen most of the time, shows none of it. The old
layout's whole-district topic (one level shorter) is ignored.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

from console.tui.merged import merge_closed, merge_summaries
from protocols import codec, topics
from protocols.schemas import (
    ClosedList,
    DistrictCameras,
    IncidentState,
    IncidentStatus,
    Presence,
    ResponderState,
    ShelterList,
    Summary,
)
from protocols.shift import ShiftReport
from widgets.format import plausible_time

SortKey = tuple[int, int, float, str]

_INCIDENT = f"{topics.ROOT}/state/incident/"
_CAMERAS = f"{topics.ROOT}/state/cameras/"
_RESPONDER = f"{topics.ROOT}/state/responder/"
_PRESENCE = f"{topics.ROOT}/presence/"
_SUMMARY = f"{topics.ROOT}/state/summary/"
_CLOSED = f"{topics.ROOT}/state/closed/"
_SHIFT = f"{topics.ROOT}/state/shift/"

# Words an operator types for a status; the wire names work too.
_STATUS_WORDS: dict[str, IncidentStatus] = {
    "new": IncidentStatus.NEW,
    "ack": IncidentStatus.ACKNOWLEDGED,
    "acked": IncidentStatus.ACKNOWLEDGED,
    "acknowledged": IncidentStatus.ACKNOWLEDGED,
    "disp": IncidentStatus.DISPATCHED,
    "dispatched": IncidentStatus.DISPATCHED,
    "onscene": IncidentStatus.ON_SCENE,
    "on-scene": IncidentStatus.ON_SCENE,
}


def sort_key(incident: IncidentState) -> SortKey:
    """Most urgent first: standing, then escalated, then oldest, then id for stability.

    An escalated incident stands one priority higher: an escalated P2 sorts with the
    P1s, ahead of those not escalated (P1!, P2!, P1, P3!, P2, ...). Escalation is a
    person or an SLA saying "this one now", so it must not stay below every P1 that
    nobody escalated; an unanswered P1 escalates by SLA and rises above it again."""
    standing = max(1, incident.priority - 1) if incident.escalated else incident.priority
    return (standing, 0 if incident.escalated else 1, _when(incident.created), incident.id)


def _when(created: float) -> float:
    """A creation time that orders: nan compares false to everything, so bisect would
    lose its key and leave a row pointing at a removed incident. A time no clock gives
    (nan, negative, past 2100) sorts as the oldest, first in its priority: an
    incident is never buried because its clock is broken."""
    return created if plausible_time(created) else 0.0


@dataclass(frozen=True)
class Filter:
    """What the operator typed after ``/``: ``p1 gangnam new scream`` and the like."""

    text: str = ""
    district: str | None = None
    priority: int | None = None
    status: IncidentStatus | None = None

    @classmethod
    def parse(cls, query: str, districts: set[str] | frozenset[str] = frozenset()) -> Filter:
        """Tokens ``p1``..``p4`` set the priority, status words the status, a known
        district name (or ``d:NAME``) the district; everything else is free text."""
        text: list[str] = []
        district: str | None = None
        priority: int | None = None
        status: IncidentStatus | None = None
        lowered = {d.lower(): d for d in districts}
        for token in query.split():
            low = token.lower()
            if len(low) == 2 and low[0] == "p" and low[1] in "1234":
                priority = int(low[1])
            elif low in _STATUS_WORDS:
                status = _STATUS_WORDS[low]
            elif low.startswith("d:") and len(low) > 2:
                district = lowered.get(low[2:], token[2:])
            elif low in lowered:
                district = lowered[low]
            else:
                text.append(low)
        return cls(" ".join(text), district, priority, status)

    @property
    def active(self) -> bool:
        return bool(self.text or self.district or self.priority or self.status)

    def matches(self, incident: IncidentState) -> bool:
        if self.priority is not None and incident.priority != self.priority:
            return False
        if self.status is not None and incident.status != self.status:
            return False
        if self.district is not None and incident.district.lower() != self.district.lower():
            return False
        if self.text:
            haystack = " ".join(
                (incident.id, incident.title, incident.place, incident.district, incident.source,
                 incident.kind, incident.owner or "", " ".join(incident.responders))
            ).lower()  # fmt: skip
            return all(word in haystack for word in self.text.split())
        return True

    def describe(self) -> str:
        parts = []
        if self.priority:
            parts.append(f"P{self.priority}")
        if self.status:
            parts.append(str(self.status))
        if self.district:
            parts.append(self.district)
        if self.text:
            parts.append(f'"{self.text}"')
        return " ".join(parts)


@dataclass
class Changes:
    """What changed since the last drain; the UI repaints only that."""

    incidents: set[str] = field(default_factory=set)
    order: bool = False  # rows were added, removed or moved
    cameras: bool = False
    responders: bool = False
    summary: bool = False
    shelters: bool = False
    presence: bool = False
    closed: bool = False  # the list of recently closed incidents
    shift: bool = False  # a partition's shift figures (the supervisor pane)

    def __bool__(self) -> bool:
        return bool(
            self.incidents or self.order or self.cameras or self.responders
            or self.summary or self.shelters or self.presence or self.closed or self.shift
        )  # fmt: skip


class IncidentView:
    """A live, read-only sequence of the open incidents in queue order (filtered)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def __len__(self) -> int:
        return len(self._store._visible_keys())

    def __getitem__(self, index: int) -> IncidentState:
        return self._store.incidents[self._store._visible_keys()[index][3]]

    def index_of(self, incident_id: str) -> int | None:
        """Row of an incident, found by bisecting its key: O(log n)."""
        key = self._store._key_of.get(incident_id)
        if key is None:
            return None
        keys = self._store._visible_keys()
        i = bisect.bisect_left(keys, key)
        return i if i < len(keys) and keys[i] == key else None

    def index_after(self, incident: IncidentState) -> int:
        """Row where ``incident`` would be in queue order, whether or not it is there:
        the row of its neighbour once it left (closed or filtered out). O(log n)."""
        return bisect.bisect_left(self._store._visible_keys(), sort_key(incident))


class StateStore:
    def __init__(self) -> None:
        self.incidents: dict[str, IncidentState] = {}  # open and recently closed
        self._cameras: dict[str, DistrictCameras] = {}  # whole districts, pages joined
        self._camera_pages: dict[str, dict[int, DistrictCameras]] = {}  # decoded
        self._camera_raw: dict[str, dict[int, bytes]] = {}  # received, not decoded yet
        self._stale_districts: set[str] = set()  # pages changed since they were joined
        self.responders: dict[str, ResponderState] = {}
        self.summary: Summary | None = None  # of every partition seen, merged
        self.summaries: dict[str, Summary] = {}  # by partition
        self.shelters: ShelterList | None = None
        self.closed: ClosedList | None = None  # of every district seen, merged
        self.closed_lists: dict[str, ClosedList] = {}  # by home district
        self.presence: dict[str, Presence] = {}
        self.shift_reports: dict[str, ShiftReport] = {}  # by partition (its topic's level)
        self.version = 0
        self.rejected = 0
        self.last_error = ""
        self._keys: list[SortKey] = []  # open incidents, sorted
        self._key_of: dict[str, SortKey] = {}
        self._filter = Filter()
        self._filtered: list[SortKey] = []
        self._changes = Changes()
        self._unconfirmed: set[str] | None = None  # open incidents not yet seen since a reconnect
        self.view = IncidentView(self)

    # --- feeding ----------------------------------------------------------------

    def apply_payload(self, topic: str, payload: bytes) -> bool:
        """Decode a state or presence payload by its topic and apply it.

        Returns False (and counts it) when the payload is not acceptable: the
        console keeps running on a bad message, like the core does."""
        try:
            if topic.startswith(_INCIDENT):
                if not payload:  # retained message cleared: the incident is gone
                    self.remove_incident(topics.last_level(topic))
                    return True
                # A state the core published: as large as its notes and history make it
                # (bounded there), not a raw message's limit.
                self.apply(codec.decode(payload, IncidentState, max_bytes=codec.MAX_STATE_PAYLOAD))
            elif topic.startswith(_CAMERAS):
                district, _, page = topic[len(_CAMERAS) :].rpartition("/")
                # ASCII digits, at most six (pages <= 100,000): int() of a 5,000-digit
                # level would raise past the WireError this method turns into a refusal.
                if not district or not (page.isascii() and page.isdigit()) or len(page) > 6:
                    return True  # a whole district under the old layout: superseded by pages
                if not payload:
                    self.remove_camera_page(district, int(page))
                elif len(payload) > codec.MAX_STATE_PAYLOAD:
                    raise codec.WireError(f"{len(payload)} bytes, over the state limit")
                else:  # decoded when read (see the module's docstring)
                    self._camera_raw.setdefault(district, {})[int(page)] = payload
                    self._cameras_changed(district)
                    self.version += 1
            elif not payload:
                return True  # any other cleared retained topic: nothing to show
            elif topic.startswith(_RESPONDER):
                self.apply(codec.decode(payload, ResponderState))
            elif topic.startswith(_SUMMARY):
                self.apply(codec.decode(payload, Summary))
            elif topic == topics.STATE_SHELTERS:
                self.apply(codec.decode(payload, ShelterList, max_bytes=codec.MAX_STATE_PAYLOAD))
            elif topic.startswith(_CLOSED):
                listing: ClosedList = codec.decode(
                    payload, ClosedList, max_bytes=codec.MAX_STATE_PAYLOAD
                )
                self.apply(listing, district=topics.last_level(topic))
            elif topic.startswith(_SHIFT):
                report: ShiftReport = codec.decode(
                    payload, ShiftReport, max_bytes=codec.MAX_STATE_PAYLOAD
                )
                self.apply(report, district=topics.last_level(topic))
            elif topic.startswith(_PRESENCE):
                presence: Presence = codec.decode(payload, Presence)
                # The topic's level is the account the broker let publish there; the
                # payload's name is only a claim (the core keys presence the same way).
                account = topics.last_level(topic)
                if presence.operator != account:
                    raise codec.WireError(
                        f"presence of {presence.operator!r} on the topic of {account!r}"
                    )
                self.apply(presence)
            else:
                return False
        except codec.WireError as exc:
            self.rejected += 1
            self.last_error = f"{topic}: {exc.reason}"
            return False
        return True

    def apply(self, message: Any, *, district: str = "") -> None:
        """Apply one decoded state message (a closed list: of ``district``; a shift
        report: of the partition ``district`` names, its topic's last level)."""
        if isinstance(message, IncidentState):
            self._apply_incident(message)
        elif isinstance(message, DistrictCameras):
            self._camera_pages.setdefault(message.district, {})[message.page] = message
            self._camera_raw.get(message.district, {}).pop(message.page, None)
            self._cameras_changed(message.district)
        elif isinstance(message, ResponderState):
            self.responders[message.id] = message
            self._changes.responders = True
        elif isinstance(message, Summary):
            self.summaries[message.partition] = message
            self.summary = merge_summaries(self.summaries)
            self._changes.summary = True
        elif isinstance(message, ShelterList):
            self.shelters = message
            self._changes.shelters = True
        elif isinstance(message, ClosedList):
            self.closed_lists[district] = message
            self.closed = merge_closed(self.closed_lists)
            self._changes.closed = True
        elif isinstance(message, Presence):
            self.presence[message.operator] = message
            self._changes.presence = True
        elif isinstance(message, ShiftReport):
            self.shift_reports[district or message.partition] = message
            self._changes.shift = True
        else:
            raise TypeError(f"not a state message: {type(message).__name__}")
        self.version += 1

    def _apply_incident(self, incident: IncidentState) -> None:
        if self._unconfirmed is not None:
            self._unconfirmed.discard(incident.id)
        self.incidents[incident.id] = incident
        self._changes.incidents.add(incident.id)
        old = self._key_of.get(incident.id)
        new = None if incident.status.is_closed else sort_key(incident)
        if old == new and not self._filter.active:
            return  # the common storm case: same place in the queue, no O(n) list shuffle
        if old is not None:
            self._remove_key(old)
            del self._key_of[incident.id]
        if new is not None:
            bisect.insort(self._keys, new)
            self._key_of[incident.id] = new
            if self._filter.active and self._filter.matches(incident):
                bisect.insort(self._filtered, new)
        if old != new or self._filter.active:
            self._changes.order = True

    def _cameras_changed(self, district: str) -> None:
        self._stale_districts.add(district)
        self._changes.cameras = True

    def remove_camera_page(self, district: str, page: int) -> None:
        removed = False
        for held in (self._camera_pages, self._camera_raw):
            pages = held.get(district)
            if pages is not None and pages.pop(page, None) is not None:
                removed = True
                if not pages:
                    del held[district]
        if removed:
            self._cameras_changed(district)
            self.version += 1

    @property
    def cameras(self) -> dict[str, DistrictCameras]:
        """Every district's cameras, whole (its pages decoded and joined, in order)."""
        for district in self._stale_districts:
            self._join_pages(district)
        self._stale_districts.clear()
        return self._cameras

    def camera_district(self, district: str) -> DistrictCameras | None:
        """One district's cameras, whole: decodes only that district's new pages."""
        if district in self._stale_districts:
            self._stale_districts.discard(district)
            self._join_pages(district)
        return self._cameras.get(district)

    def _decode_pages(self, district: str) -> None:
        raw = self._camera_raw.pop(district, None)
        if not raw:
            return
        pages = self._camera_pages.setdefault(district, {})
        for n, payload in raw.items():
            try:
                page: DistrictCameras = codec.decode(
                    payload, DistrictCameras, max_bytes=codec.MAX_STATE_PAYLOAD
                )
                if (page.district, page.page) != (district, n):
                    raise codec.WireError(f"holds page {page.page} of {page.district!r}")
            except codec.WireError as exc:  # the page held before, if any, stays
                self.rejected += 1
                self.last_error = f"{topics.state_camera_page(district, n)}: {exc.reason}"
                continue
            pages[n] = page

    def _join_pages(self, district: str) -> None:
        self._decode_pages(district)
        pages = self._camera_pages.get(district)
        if not pages:
            self._camera_pages.pop(district, None)
            self._cameras.pop(district, None)
            return
        # The newest page says how many there are: pages past that are left over from
        # a longer list (all pages are republished when the count changes).
        newest = max(pages.values(), key=lambda p: p.ts)
        for stale in [n for n in pages if n >= newest.pages]:
            del pages[stale]
        ordered = [pages[n] for n in sorted(pages)]
        if len(ordered) == 1:
            self._cameras[district] = ordered[0]
            return
        self._cameras[district] = DistrictCameras(
            district=district,
            ts=newest.ts,
            cameras=tuple(chain.from_iterable(p.cameras for p in ordered)),
            online=sum(p.online for p in ordered),
            offline=sum(p.offline for p in ordered),
            tampered=sum(p.tampered for p in ordered),
            alarm=sum(p.alarm for p in ordered),
            pages=newest.pages,
        )

    # --- after a reconnect ----------------------------------------------------------

    @property
    def resyncing(self) -> bool:
        return self._unconfirmed is not None

    def begin_resync(self) -> None:
        """A new connection is coming: the retained state it brings is the whole truth.

        An incident closed while the link was down was cleared from the broker by an
        empty retained message this console never saw, so whatever the retained
        picture does not mention again is stale and goes at :meth:`end_resync`.
        """
        self._unconfirmed = set(self._key_of)

    def end_resync(self) -> None:
        """The retained picture has been delivered (live traffic follows it)."""
        stale, self._unconfirmed = self._unconfirmed, None
        for incident_id in sorted(stale or ()):
            self.remove_incident(incident_id)

    def remove_incident(self, incident_id: str) -> None:
        if self._unconfirmed is not None:
            self._unconfirmed.discard(incident_id)
        old = self._key_of.pop(incident_id, None)
        if old is not None:
            self._remove_key(old)
            self._changes.order = True
        if self.incidents.pop(incident_id, None) is not None:
            self._changes.incidents.add(incident_id)
        self.version += 1

    def _remove_key(self, key: SortKey) -> None:
        for keys in (self._keys, self._filtered):
            i = bisect.bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                del keys[i]

    # --- reading ------------------------------------------------------------------

    @property
    def filter(self) -> Filter:
        return self._filter

    def set_filter(self, new: Filter) -> None:
        """Replace the filter; the one O(n) pass happens here, not per update."""
        if new == self._filter:
            return
        self._filter = new
        self._filtered = (
            [k for k in self._keys if new.matches(self.incidents[k[3]])] if new.active else []
        )
        self._changes.order = True
        self.version += 1

    def _visible_keys(self) -> list[SortKey]:
        return self._filtered if self._filter.active else self._keys

    @property
    def open_count(self) -> int:
        return len(self._keys)

    def districts(self) -> set[str]:
        cameras = self._camera_pages.keys() | self._camera_raw.keys()  # nothing decoded
        return cameras | {i.district for i in self.incidents.values()}

    def mark_all_changed(self) -> None:
        """Make the next drain redraw everything (a new view attaching to the store)."""
        self._changes.order = True
        self._changes.cameras = self._changes.responders = True
        self._changes.summary = self._changes.presence = self._changes.shelters = True
        self._changes.closed = self._changes.shift = True

    def drain(self) -> Changes:
        """What changed since the last drain (and forget it)."""
        changes, self._changes = self._changes, Changes()
        return changes
