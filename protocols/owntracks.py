"""OwnTracks (phone location app) over MQTT → :class:`ResponderReport`.

The app, in MQTT mode, publishes JSON to ``owntracks/<user>/<device>``: its
position as ``_type: location`` (``lat``, ``lon``, ``tst``, ``acc``, ``batt``,
``vel``, ``tid``, ...) and, through the broker, its last will ``_type: lwt``
when the connection drops. Other types (``transition``, ``waypoint``, ``card``,
``cmd``, ``status``, ``encrypted``, ...) are ignored and counted, as are the
sub-topics (``.../event``, ``.../cmd``, ``.../info``, ...).

Choices (see docs/integrations.md):

- A location carries no dispatch status, and a position must never clear a
  dispatch. So it becomes a ``ResponderReport`` with ``position_only=True``:
  the core keeps the status it knows; ``status`` (``available``) counts only for
  a responder the core has never seen.
- ``lwt`` marks the unit lost: a report with status ``off-duty`` at its last
  known position (a lost phone must not be recommended as the nearest free
  unit; a dispatched one is released from its incident, on the record). The
  next location after that brings it back as ``available`` (the adapter set
  it off duty, so the adapter restores it). Set ``lwt_off_duty = false`` to
  ignore last wills instead. The lwt's ``tst`` is when the app connected, not
  when it was lost, so the report carries ``now``.
- Fixes worse than ``max_accuracy_m`` and fixes older than the newest one seen
  (queued positions replayed after a reconnect) are ignored, as are fixes older
  than ``max_age_s`` (a year-old fix never moves a unit). A fix dated more than
  ``max_ahead_s`` after the receive time (a phone clock ahead) is taken as of the
  receive time, so it cannot make the newer fixes that follow look old.
- Numeric fields sent as strings (apps before Android 0.5.11 / iOS 8.0) are
  accepted.
- A user not in ``users`` is refused with a reason naming it. One device per
  responder is assumed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated

import msgspec
from msgspec import Meta, Struct, field

from protocols.adapters import (
    MAX_JSON_PAYLOAD,
    AdapterResult,
    PrefixAdapter,
    emit,
    ignore,
    refuse,
    too_big,
    validation_reason,
)
from protocols.schemas import (
    Ident,
    Lat,
    Lon,
    ResponderReport,
    ResponderStatus,
    UnitKind,
)

Result = AdapterResult[ResponderReport]


class OwnTracksMapping(Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[owntracks]`` configuration: which phones are which responders."""

    prefix: Annotated[str, Meta(min_length=1, max_length=200)] = "owntracks"
    users: dict[str, Ident] = field(default_factory=dict)  # OwnTracks user → responder id
    kinds: dict[str, UnitKind] = field(default_factory=dict)  # responder id → unit kind
    default_kind: UnitKind = UnitKind.SCOUT
    max_accuracy_m: Annotated[float, Meta(gt=0)] = 1000.0
    lwt_off_duty: bool = True
    max_tracked: Annotated[int, Meta(ge=1, le=1_000_000)] = 10_000
    max_age_s: Annotated[float, Meta(gt=0)] = 86400.0
    max_ahead_s: Annotated[float, Meta(gt=0)] = 300.0


def subscriptions(mapping: OwnTracksMapping) -> list[str]:
    """The MQTT topic filters the adapter reads (locations and last wills only)."""
    return [f"{mapping.prefix.rstrip('/')}/+/+"]


class _Envelope(Struct):
    type: str = field(name="_type")


class _Location(Struct):
    lat: Lat
    lon: Lon
    tst: Annotated[float, Meta(gt=0.0, le=1e11)]
    acc: Annotated[float, Meta(ge=0.0)] | None = None


_envelope_decoder = msgspec.json.Decoder(_Envelope, strict=False)
_location_decoder = msgspec.json.Decoder(_Location, strict=False)


@dataclass(slots=True)
class _Last:
    lat: float
    lon: float
    tst: float
    lost: bool = False


class OwnTracksAdapter(PrefixAdapter[ResponderReport]):
    """Turns OwnTracks MQTT messages into responder reports."""

    format_name = "OwnTracks"

    def __init__(self, mapping: OwnTracksMapping) -> None:
        super().__init__(mapping.prefix)
        self.mapping = mapping
        self._last: OrderedDict[str, _Last] = OrderedDict()

    def subscriptions(self) -> list[str]:
        return subscriptions(self.mapping)

    def _handle(self, topic: str, rest: str, payload: bytes, now: float) -> Result:
        levels = rest.split("/")
        if len(levels) > 2:
            return ignore(f"{topic}: OwnTracks sub-topic '{levels[2]}' is not used")
        if len(levels) != 2 or not all(levels):
            return refuse(f"{topic}: expected {self.prefix}<user>/<device>")
        user = levels[0]
        limit = too_big(payload, MAX_JSON_PAYLOAD)
        if limit is not None:
            return refuse(f"{topic}: {limit}")
        try:
            kind = _envelope_decoder.decode(payload).type
        except msgspec.DecodeError as exc:
            return refuse(f"{topic}: not an OwnTracks message: {validation_reason(exc)}")
        if kind not in ("location", "lwt"):
            return ignore(f"{topic}: OwnTracks _type '{kind[:40]}' is not used")
        responder_id = self.mapping.users.get(user)
        if responder_id is None:
            return refuse(
                f"{topic}: OwnTracks user '{user[:100]}' is not mapped to a responder"
                " (add it to the OwnTracks mapping's users)"
            )
        if kind == "lwt":
            return self._on_lwt(topic, responder_id, now)
        try:
            loc = _location_decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return refuse(f"{topic}: bad OwnTracks location: {validation_reason(exc)}")
        return self._on_location(topic, responder_id, loc, now)

    def _kind(self, responder_id: str) -> UnitKind:
        return self.mapping.kinds.get(responder_id, self.mapping.default_kind)

    def _on_location(self, topic: str, responder_id: str, loc: _Location, now: float) -> Result:
        if loc.acc is not None and loc.acc > self.mapping.max_accuracy_m:
            return ignore(
                f"{topic}: fix accurate to {loc.acc:.0f} m only"
                f" (limit {self.mapping.max_accuracy_m:.0f} m)"
            )
        if loc.tst < now - self.mapping.max_age_s:
            return ignore(
                f"{topic}: fix of {loc.tst:.0f} is {now - loc.tst:.0f} s old"
                f" (limit {self.mapping.max_age_s:.0f} s)"
            )
        tst = now if loc.tst > now + self.mapping.max_ahead_s else loc.tst
        last = self._last.get(responder_id)
        if last is not None and tst < last.tst:
            return ignore(f"{topic}: fix of {tst:.0f} is older than the last ({last.tst:.0f})")
        returning = last is not None and last.lost
        self._last[responder_id] = _Last(loc.lat, loc.lon, tst)
        self._last.move_to_end(responder_id)
        while len(self._last) > self.mapping.max_tracked:
            self._last.popitem(last=False)
        return emit(
            ResponderReport(
                responder_id=responder_id,
                kind=self._kind(responder_id),
                status=ResponderStatus.AVAILABLE,
                lat=loc.lat,
                lon=loc.lon,
                ts=tst,
                position_only=not returning,
            )
        )

    def _on_lwt(self, topic: str, responder_id: str, now: float) -> Result:
        if not self.mapping.lwt_off_duty:
            return ignore(f"{topic}: device lost (last will), ignored by the mapping")
        last = self._last.get(responder_id)
        if last is None:
            return ignore(f"{topic}: device lost (last will) before any position was seen")
        if last.lost:
            return ignore(f"{topic}: device lost (last will) again")
        last.lost = True
        return emit(
            ResponderReport(
                responder_id=responder_id,
                kind=self._kind(responder_id),
                status=ResponderStatus.OFF_DUTY,
                lat=last.lat,
                lon=last.lon,
                ts=max(now, 0.0),
            )
        )
