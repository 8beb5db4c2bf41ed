"""Ademco Contact ID events (SIA DC-05) and how our SOS triggers map onto them.

The data block of a DC-09 ``ADM-CID`` frame is ``#<acct>|QEEE GG ZZZ``: qualifier,
event code, group/partition and zone or user. This module holds that event
(:class:`ContactId`) and the ``[sia]`` configuration's mapping from an SOS trigger to
one (:class:`SiaMapping`); the DC-09 frame layer is :mod:`protocols.sia`, which builds
on this module and re-exports its public names. :class:`SiaError` lives here so both
layers can raise it without an import cycle.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Annotated

from msgspec import Meta, Struct, field

from protocols.schemas import SosTrigger

__all__ = [
    "ContactId",
    "EventCode",
    "Qualifier",
    "SiaError",
    "SiaMapping",
    "TriggerCodes",
    "TriggerZones",
    "Zone",
]


class SiaError(ValueError):
    """A frame that cannot be encoded or accepted; ``reason`` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Qualifier(enum.IntEnum):
    """Contact ID event qualifier (the first digit of ``QEEE``)."""

    NEW_EVENT = 1  # new event, or opening
    RESTORE = 3  # new restore, or closing
    STATUS = 6  # previously reported condition still present


# --- Contact ID --------------------------------------------------------------------------

_CID = re.compile(r"([0-9])([0-9]{3}) ([0-9]{2}) ([0-9]{3})")


@dataclass(frozen=True, slots=True)
class ContactId:
    """One Contact ID event: ``1120 01 001`` is a new panic alarm, group 1, zone 1."""

    qualifier: int
    code: int  # 3 digits: 120 panic, 121 duress, 122 silent panic, 123 audible panic, ...
    group: int = 0  # partition, 00–99 (0: none)
    zone: int = 0  # zone or user number, 000–999 (0: none)

    def __post_init__(self) -> None:
        if self.qualifier not in (1, 3, 6):
            raise SiaError(f"Contact ID qualifier {self.qualifier} is not 1, 3 or 6")
        if not 0 <= self.code <= 999:
            raise SiaError(f"Contact ID event code {self.code} is not 000–999")
        if not 0 <= self.group <= 99:
            raise SiaError(f"Contact ID group {self.group} is not 00–99")
        if not 0 <= self.zone <= 999:
            raise SiaError(f"Contact ID zone {self.zone} is not 000–999")

    @property
    def text(self) -> str:
        return f"{self.qualifier}{self.code:03d} {self.group:02d} {self.zone:03d}"

    @classmethod
    def parse(cls, text: str) -> ContactId:
        m = _CID.fullmatch(text)
        if m is None:
            raise SiaError(f"Contact ID {text[:40]!r} is not 'QEEE GG ZZZ' (decimal digits)")
        return cls(int(m[1]), int(m[2]), int(m[3]), int(m[4]))


# --- our SOS triggers as Contact ID ---------------------------------------------------------

EventCode = Annotated[int, Meta(ge=100, le=999)]
Zone = Annotated[int, Meta(ge=0, le=999)]


class TriggerCodes(Struct, kw_only=True, forbid_unknown_fields=True):
    """Contact ID event code per SOS trigger: 120 panic, 121 duress (DC-05)."""

    button: EventCode = 120
    shake: EventCode = 120
    voice: EventCode = 121
    timer_expired: EventCode = field(default=120, name="timer-expired")


class TriggerZones(Struct, kw_only=True, forbid_unknown_fields=True):
    """Contact ID zone/user number per SOS trigger, so the centre can tell them apart."""

    button: Zone = 1
    shake: Zone = 2
    voice: Zone = 3
    timer_expired: Zone = field(default=4, name="timer-expired")


class SiaMapping(Struct, kw_only=True, forbid_unknown_fields=True):
    """How an SOS becomes a Contact ID event (the ``[sia]`` configuration's mapping part)."""

    group: Annotated[int, Meta(ge=0, le=99)] = 1
    codes: TriggerCodes = field(default_factory=TriggerCodes)
    zones: TriggerZones = field(default_factory=TriggerZones)

    def event(self, trigger: SosTrigger, qualifier: Qualifier = Qualifier.NEW_EVENT) -> ContactId:
        attr = trigger.value.replace("-", "_")
        return ContactId(
            int(qualifier),
            int(getattr(self.codes, attr)),
            self.group,
            int(getattr(self.zones, attr)),
        )
