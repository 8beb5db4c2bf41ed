"""What every foreign-format adapter (Frigate, OwnTracks, CAP) hands back.

An adapter never raises on input: it returns an :class:`AdapterResult` that is
exactly one of

- ``messages`` (possibly several: Frigate's ``available`` speaks for every camera),
- ``ignored``: a well-formed message the console has no use for (an OwnTracks
  waypoint, an unchanged Frigate update). Counted, not journaled as an error.
- ``error``: a payload that cannot be accepted, with a reason phrased for the
  dead-letter table ("frigate/events: camera 'garage' is not mapped ...").

Adapters are pure: no I/O, no clock reads (``now`` comes in), no logging.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

import msgspec

M = TypeVar("M")

# A JSON payload larger than this is refused unread (codec.MAX_PAYLOAD is the same).
MAX_JSON_PAYLOAD: Final = 256 * 1024


@dataclass(frozen=True, slots=True)
class AdapterResult(Generic[M]):
    messages: list[M] = field(default_factory=list)
    ignored: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Nothing went wrong (the message may still have been ignored)."""
        return self.error is None


def emit(*messages: M) -> AdapterResult[M]:
    return AdapterResult(messages=list(messages))


def ignore(reason: str) -> AdapterResult[M]:
    return AdapterResult(ignored=reason[:500])


def refuse(reason: str) -> AdapterResult[M]:
    return AdapterResult(error=reason[:500])


def too_big(payload: bytes, limit: int) -> str | None:
    """The refusal for an oversized payload, or None when it fits."""
    if len(payload) > limit:
        return f"payload of {len(payload)} bytes exceeds the {limit}-byte limit"
    return None


def validation_reason(exc: msgspec.MsgspecError) -> str:
    """msgspec's message, which names the field path (``at `$.after.score```)."""
    text = str(exc)
    return text[:1].lower() + text[1:]
