"""SIA DC-09 frames carrying Ademco Contact ID events: a pure encoder and decoder.

ANSI/SIA DC-09-2013 ("Internet protocol event reporting") wraps an alarm event in one
line of ASCII::

    <LF><crc><0LLL>"<id>"<seq>[R<rcvr>]L<pref>[#<acct>][<data>][<x-data>]...[_<timestamp>]<CR>

* ``crc``: four hex digits, CRC-16/ARC (polynomial 0x8005 reflected = 0xA001, initial
  value 0, no final xor) of everything from the opening ``"`` of the id to the end of
  the timestamp (the LF, the crc, the length and the CR are not covered);
* ``0LLL``: ``0`` and three hex digits, the length in bytes of that same text;
* ``id``: the message type, here ``ADM-CID`` (Contact ID), ``NULL`` (supervision),
  or a receiver's answer ``ACK`` / ``NAK`` / ``DUH``; ``SIA-DCS`` is decoded too;
* ``seq``: four decimal digits, 0001–9999 then wrapping to 0001 (a retransmission
  repeats its sequence number; supervision ``NULL`` messages use 0000);
* ``R<rcvr>`` (optional) and ``L<pref>`` (required): receiver and line numbers,
  1–6 hex digits; ``#<acct>``: the account, 3–16 hex digits;
* ``[<data>]``: for ADM-CID ``#<acct>|QEEE GG ZZZ`` (Contact ID, SIA DC-05: qualifier,
  event code, group/partition, zone or user); empty ``[]`` for NULL and answers;
* ``_HH:MM:SS,MM-DD-YYYY``: the optional timestamp, UTC.

Encrypted messages (AES, the ``*`` before the id) are **not** supported: they are
refused with a reason. Nothing here does I/O or reads the clock; times come in.
Decoders never raise anything but :class:`SiaError`.

The Contact ID event in the data block, and the mapping of our SOS triggers onto it,
are in :mod:`protocols.sia_contact_id`; this module re-exports their public names.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from typing import Final

from protocols.sia_contact_id import ContactId, Qualifier, SiaError, SiaMapping

__all__ = [
    "MAX_BODY",
    "Answer",
    "ContactId",
    "Frame",
    "MessageId",
    "Qualifier",
    "Sequence",
    "SiaError",
    "SiaMapping",
    "ack_for",
    "adm_cid",
    "body_of",
    "crc16",
    "decode",
    "duh_for",
    "encode",
    "format_timestamp",
    "nak",
    "null_message",
    "parse_answer",
    "split_frames",
]

LF: Final = b"\n"
CR: Final = b"\r"
MAX_BODY: Final = 0xFFF  # the length field is "0" + three hex digits
MAX_FRAME: Final = 1 + 4 + 4 + MAX_BODY + 1
TIMESTAMP_FORMAT: Final = "%H:%M:%S,%m-%d-%Y"


class MessageId(enum.StrEnum):
    SIA_DCS = "SIA-DCS"
    ADM_CID = "ADM-CID"
    NULL = "NULL"
    ACK = "ACK"
    NAK = "NAK"
    DUH = "DUH"


ANSWERS: Final = frozenset({MessageId.ACK, MessageId.NAK, MessageId.DUH})


# --- CRC ---------------------------------------------------------------------------------


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE: Final = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/ARC (poly 0x8005 reflected, init 0, no xorout): DC-09's CRC. "123456789" → 0xBB3D."""
    crc = 0
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


# --- frames -----------------------------------------------------------------------------

_HEX_1_6 = re.compile(r"[0-9A-F]{1,6}")
_ACCOUNT = re.compile(r"[0-9A-F]{3,16}")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")


@dataclass(frozen=True, slots=True)
class Frame:
    """One DC-09 message, decoded (or about to be encoded)."""

    id: MessageId
    seq: int
    prefix: str  # the L field
    receiver: str | None = None  # the R field; None: absent
    account: str | None = None  # the # field; None: absent
    data: str = ""  # inside the first [...]
    extended: tuple[str, ...] = ()  # further [...] blocks (x-data), kept as they are
    timestamp: dt.datetime | None = None  # UTC, whole seconds
    nak_account: bool = False  # the "A0" a NAK carries instead of an account

    def contact_id(self) -> ContactId:
        """The Contact ID event of an ADM-CID frame; the data's account must be the header's."""
        if self.id is not MessageId.ADM_CID:
            raise SiaError(f"a {self.id} message carries no Contact ID event")
        data = self.data
        if data.startswith("#"):
            account, bar, rest = data[1:].partition("|")
            if not bar:
                raise SiaError("ADM-CID data has '#account' but no '|'")
            if account != self.account:
                raise SiaError(f"ADM-CID data account {account!r} is not the header's")
            data = rest
        elif data.startswith("|"):
            data = data[1:]
        return ContactId.parse(data)


def _check_fields(frame: Frame) -> None:
    if not 0 <= frame.seq <= 9999:
        raise SiaError(f"sequence number {frame.seq} is not 0000–9999")
    if not _HEX_1_6.fullmatch(frame.prefix):
        raise SiaError(f"line prefix {frame.prefix!r} is not 1–6 hex digits")
    if frame.receiver is not None and not _HEX_1_6.fullmatch(frame.receiver):
        raise SiaError(f"receiver {frame.receiver!r} is not 1–6 hex digits")
    if frame.account is not None and not _ACCOUNT.fullmatch(frame.account):
        raise SiaError(f"account {frame.account!r} is not 3–16 hex digits")
    for block in (frame.data, *frame.extended):
        if not _PRINTABLE.fullmatch(block) or "[" in block or "]" in block:
            raise SiaError(f"data block {block[:40]!r} is not printable ASCII without brackets")
    if frame.timestamp is not None and frame.timestamp.tzinfo is None:
        raise SiaError("the timestamp must be timezone-aware (it is sent in UTC)")


def format_timestamp(when: dt.datetime) -> str:
    """``_HH:MM:SS,MM-DD-YYYY`` (UTC)."""
    return "_" + when.astimezone(dt.UTC).strftime(TIMESTAMP_FORMAT)


def body_of(frame: Frame) -> str:
    """The text the length and the CRC cover: from the id's opening quote to the timestamp."""
    _check_fields(frame)
    parts = [f'"{frame.id.value}"{frame.seq:04d}']
    if frame.receiver is not None:
        parts.append(f"R{frame.receiver}")
    parts.append(f"L{frame.prefix}")
    if frame.account is not None:
        parts.append(f"#{frame.account}")
    elif frame.nak_account:
        parts.append("A0")
    parts.append(f"[{frame.data}]")
    parts.extend(f"[{x}]" for x in frame.extended)
    if frame.timestamp is not None:
        parts.append(format_timestamp(frame.timestamp))
    return "".join(parts)


def encode(frame: Frame) -> bytes:
    """The frame on the wire: ``<LF><crc><0LLL><body><CR>``."""
    body = body_of(frame).encode("ascii")
    if len(body) > MAX_BODY:
        raise SiaError(f"message of {len(body)} bytes exceeds the {MAX_BODY}-byte limit")
    return LF + f"{crc16(body):04X}0{len(body):03X}".encode("ascii") + body + CR


_HEAD = re.compile(rb"([0-9A-Fa-f]{4})0([0-9A-Fa-f]{3})")
_ID = re.compile(r'"([^"]{0,16})"')
_SEQ = re.compile(r"[0-9]{4}")
_R = re.compile(r"R([0-9A-F]{1,6})")
_L = re.compile(r"L([0-9A-F]{1,6})")
_ACCT = re.compile(r"#([0-9A-F]{3,16})")
_BLOCK = re.compile(r"\[([^\[\]]*)\]")
_TS = re.compile(r"_([0-9]{2}:[0-9]{2}:[0-9]{2},[0-9]{2}-[0-9]{2}-[0-9]{4})")


def decode(raw: bytes) -> Frame:
    """Check and decode one frame, ``<LF>`` to ``<CR>`` inclusive; SiaError says what is wrong."""
    if len(raw) > MAX_FRAME:
        raise SiaError(f"frame of {len(raw)} bytes exceeds the {MAX_FRAME}-byte limit")
    if not raw.startswith(LF):
        raise SiaError("frame does not start with LF")
    if not raw.endswith(CR):
        raise SiaError("frame does not end with CR")
    head = _HEAD.match(raw, 1)
    if head is None:
        raise SiaError("no CRC (4 hex digits) and length ('0' and 3 hex digits) after the LF")
    body_bytes = raw[9:-1]
    length = int(head[2], 16)
    if length != len(body_bytes):
        raise SiaError(f"length field says {length} bytes, the message has {len(body_bytes)}")
    sent_crc, crc = int(head[1], 16), crc16(body_bytes)
    if sent_crc != crc:
        raise SiaError(f"CRC mismatch: frame says {sent_crc:04X}, message gives {crc:04X}")
    try:
        body = body_bytes.decode("ascii")
    except UnicodeDecodeError:
        raise SiaError("message is not ASCII") from None
    if not _PRINTABLE.fullmatch(body):
        raise SiaError("message holds control characters")
    return _parse_body(body)


def _parse_body(body: str) -> Frame:
    pos = 0
    m = _ID.match(body, pos)
    if m is None:
        raise SiaError('no quoted message type ("ADM-CID", "NULL", ...) at the start')
    token = m[1]
    if token.startswith("*"):
        raise SiaError(f"encrypted message ({token}): AES is not supported")
    try:
        message_id = MessageId(token)
    except ValueError:
        raise SiaError(f"unknown message type {token!r}") from None
    pos = m.end()
    m = _SEQ.match(body, pos)
    if m is None:
        raise SiaError("no 4-digit sequence number after the message type")
    seq = int(m[0])
    pos = m.end()
    receiver = None
    if (m := _R.match(body, pos)) is not None:
        receiver, pos = m[1], m.end()
    m = _L.match(body, pos)
    if m is None:
        raise SiaError("no line prefix ('L' and 1–6 hex digits)")
    prefix, pos = m[1], m.end()
    account = None
    nak_account = False
    if message_id is MessageId.NAK and len(prefix) > 2 and prefix.endswith("A0"):
        # "L0A0": hex cannot tell the prefix from a NAK's "A0"; in a NAK, "A0" wins.
        prefix, nak_account = prefix[:-2], True
    elif (m := _ACCT.match(body, pos)) is not None:
        account, pos = m[1], m.end()
    elif body.startswith("A0", pos):
        nak_account, pos = True, pos + 2
    elif body.startswith("#", pos):
        raise SiaError("account is not 3–16 hex digits")
    m = _BLOCK.match(body, pos)
    if m is None:
        raise SiaError("no data block '[...]' after the header")
    data, pos = m[1], m.end()
    extended: list[str] = []
    while (m := _BLOCK.match(body, pos)) is not None:
        extended.append(m[1])
        pos = m.end()
    timestamp = None
    if (m := _TS.match(body, pos)) is not None:
        try:
            timestamp = dt.datetime.strptime(m[1], TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)
        except ValueError:
            raise SiaError(f"timestamp {m[1]!r} is not a valid date and time") from None
        pos = m.end()
    if pos != len(body):
        raise SiaError(f"unexpected text after the data: {body[pos : pos + 40]!r}")
    return Frame(
        id=message_id,
        seq=seq,
        prefix=prefix,
        receiver=receiver,
        account=account,
        data=data,
        extended=tuple(extended),
        timestamp=timestamp,
        nak_account=nak_account,
    )


def split_frames(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Cut complete ``LF ... CR`` frames off a stream buffer: (frames, the rest).

    Bytes before an LF are dropped (line noise); an unterminated tail longer than a
    frame can be is dropped too, so a peer cannot make the buffer grow without bound.
    """
    frames: list[bytes] = []
    while True:
        start = buffer.find(LF)
        if start < 0:
            return frames, b""
        end = buffer.find(CR, start)
        if end < 0:
            rest = buffer[start:]
            return frames, rest if len(rest) <= MAX_FRAME else b""
        frames.append(buffer[start : end + 1])
        buffer = buffer[end + 1 :]


# --- building messages ------------------------------------------------------------------


def adm_cid(
    seq: int,
    account: str,
    event: ContactId,
    *,
    prefix: str = "0",
    receiver: str | None = "0",
    when: dt.datetime | None = None,
) -> Frame:
    """An ADM-CID message: ``"ADM-CID"0001R0L0#1234[#1234|1120 01 001]_...``."""
    if not 1 <= seq <= 9999:
        raise SiaError(f"event sequence number {seq} is not 0001–9999")
    return Frame(
        id=MessageId.ADM_CID,
        seq=seq,
        prefix=prefix,
        receiver=receiver,
        account=account,
        data=f"#{account}|{event.text}",
        timestamp=when,
    )


def null_message(
    account: str, *, prefix: str = "0", receiver: str | None = "0", when: dt.datetime | None = None
) -> Frame:
    """A supervision (link test) message: ``"NULL"0000R0L0#1234[]``."""
    return Frame(
        id=MessageId.NULL,
        seq=0,
        prefix=prefix,
        receiver=receiver,
        account=account,
        timestamp=when,
    )


def ack_for(frame: Frame) -> Frame:
    """The receiver's acknowledgement: the message's sequence, receiver, prefix and account."""
    return Frame(
        id=MessageId.ACK,
        seq=frame.seq,
        prefix=frame.prefix,
        receiver=frame.receiver,
        account=frame.account,
    )


def duh_for(frame: Frame) -> Frame:
    """The receiver's "understood the frame, not the message" answer."""
    return Frame(
        id=MessageId.DUH,
        seq=frame.seq,
        prefix=frame.prefix,
        receiver=frame.receiver,
        account=frame.account,
    )


def nak(when: dt.datetime) -> Frame:
    """The receiver's refusal: ``"NAK"0000R0L0A0[]`` with its own time, so a sender can fix its clock."""
    return Frame(
        id=MessageId.NAK, seq=0, prefix="0", receiver="0", nak_account=True, timestamp=when
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """What the receiver said to a message we sent."""

    kind: MessageId  # ACK, NAK or DUH
    frame: Frame

    @property
    def accepted(self) -> bool:
        return self.kind is MessageId.ACK

    @property
    def final(self) -> bool:
        """No point in retrying: accepted, or understood as a frame but not as a message (DUH)."""
        return self.kind is not MessageId.NAK


def parse_answer(raw: bytes, sent: Frame) -> Answer:
    """Decode a receiver's answer to ``sent``; an ACK or DUH must echo its sequence and account."""
    frame = decode(raw)
    if frame.id not in ANSWERS:
        raise SiaError(f"expected ACK, NAK or DUH, got {frame.id}")
    if frame.id is not MessageId.NAK:
        if frame.seq != sent.seq:
            raise SiaError(f"{frame.id} for sequence {frame.seq:04d}, sent {sent.seq:04d}")
        if frame.account != sent.account:
            raise SiaError(f"{frame.id} for account {frame.account}, sent {sent.account}")
    return Answer(frame.id, frame)


class Sequence:
    """Event sequence numbers 0001–9999, wrapping back to 0001 (0000 is for NULL)."""

    def __init__(self, start: int = 1) -> None:
        if not 1 <= start <= 9999:
            raise ValueError("start must be 1–9999")
        self._next = start

    def next(self) -> int:
        value = self._next
        self._next = value % 9999 + 1
        return value
