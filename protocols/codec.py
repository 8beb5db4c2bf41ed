"""One codec for the wire: MessagePack by default, JSON accepted on ingest.

Decoders never raise anything but :class:`WireError`, whose ``reason`` says
what was wrong and where (msgspec names the field path, e.g. ``$.lat``).
"""

from __future__ import annotations

from typing import Any, Final, TypeVar

import msgspec

from protocols import schemas
from protocols.shift import ShiftReport

T = TypeVar("T")

MAX_PAYLOAD: Final = 256 * 1024  # no legitimate raw message is near this; junk is refused unread
# The core's retained state can be larger: one district's camera list at 100,000 cameras
# (4,000 a district) is ~410 KB. Consoles decode state with this limit instead.
MAX_STATE_PAYLOAD: Final = 8 * 1024 * 1024


class WireError(ValueError):
    """A payload that cannot be accepted. ``reason`` is for people and the dead-letter table."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_msgpack_encoder = msgspec.msgpack.Encoder()
_json_encoder = msgspec.json.Encoder()
_decoders: dict[Any, tuple[msgspec.msgpack.Decoder[Any], msgspec.json.Decoder[Any]]] = {}


def _decoders_for(kind: Any) -> tuple[msgspec.msgpack.Decoder[Any], msgspec.json.Decoder[Any]]:
    pair = _decoders.get(kind)
    if pair is None:
        pair = (msgspec.msgpack.Decoder(kind), msgspec.json.Decoder(kind))
        _decoders[kind] = pair
    return pair


def encode(message: Any) -> bytes:
    """Encode any wire struct as MessagePack."""
    return _msgpack_encoder.encode(message)


def encode_json(message: Any) -> bytes:
    return _json_encoder.encode(message)


def looks_like_json(payload: bytes) -> bool:
    """JSON objects start with '{' (after blanks); a MessagePack map never starts with a blank or '{'.

    MessagePack fixmaps are 0x80-0x8f and map16/32 0xde/0xdf, so the first byte decides.
    """
    head = payload[:1]
    if head in (b" ", b"\t", b"\r", b"\n"):
        head = payload.lstrip()[:1]
    return head == b"{"


def decode(payload: bytes, kind: type[T] | Any, *, max_bytes: int = MAX_PAYLOAD) -> T:
    """Decode and validate ``payload`` as ``kind`` (a Struct or a union), MessagePack or JSON."""
    if len(payload) > max_bytes:
        raise WireError(f"payload of {len(payload)} bytes exceeds the {max_bytes}-byte limit")
    if not payload:
        raise WireError("empty payload")
    mp, js = _decoders_for(kind)
    try:
        if looks_like_json(payload):
            return js.decode(payload)
        return mp.decode(payload)
    except msgspec.ValidationError as exc:
        raise WireError(f"invalid: {exc}") from None
    except msgspec.DecodeError as exc:
        raise WireError(f"malformed: {exc}") from None
    except RecursionError:
        # msgspec skips an unknown field recursively: nesting a few thousand deep, in a
        # payload of a few KB, exhausts the stack. A refusal, never the caller's crash.
        raise WireError("malformed: nested too deep") from None
    except Exception as exc:  # whatever else a decoder may raise, the caller sees a refusal
        raise WireError(f"malformed: {type(exc).__name__}: {exc}"[:500]) from None


def decode_any(payload: bytes, *, max_bytes: int = MAX_PAYLOAD) -> schemas.AnyMessage | ShiftReport:
    """Decode any tagged wire message (the ``type`` field decides)."""
    return decode(payload, schemas.AnyMessage | ShiftReport, max_bytes=max_bytes)


def to_builtins(message: Any) -> Any:
    """Plain dicts and lists, for JSON export and logs."""
    return msgspec.to_builtins(message)
