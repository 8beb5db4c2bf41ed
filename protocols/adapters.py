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
from typing import ClassVar, Final, Generic, TypeVar

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


class PrefixAdapter(Generic[M]):
    """What the MQTT adapters share: a topic prefix, and a ``handle`` that never raises.

    A subclass names its format (for the reasons) and implements :meth:`_handle`,
    which sees only topics under the prefix and gets the part after it.
    """

    format_name: ClassVar[str] = "foreign"

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.rstrip("/") + "/"

    def handle(self, topic: str, payload: bytes, now: float) -> AdapterResult[M]:
        """One MQTT message in, a result out. Never raises."""
        try:
            if not topic.startswith(self.prefix):
                return refuse(
                    f"{topic}: not under the {self.format_name} prefix '{self.prefix.rstrip('/')}'"
                )
            return self._handle(topic, topic[len(self.prefix) :], payload, now)
        except Exception as exc:  # a bug must not stop the ingest; say where it was
            return refuse(f"{topic}: internal error in the {self.format_name} adapter: {exc!r}")

    def _handle(self, topic: str, rest: str, payload: bytes, now: float) -> AdapterResult[M]:
        raise NotImplementedError
