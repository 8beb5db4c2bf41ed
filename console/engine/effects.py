"""What the engine asks the core to do after an input: publish, reply, ring, clear.

Effects are plain frozen values; the core interprets them (publishing state,
sending replies and receipts, ringing the bell). The engine never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.schemas import Command, Receipt, Reply


@dataclass(frozen=True, slots=True)
class IncidentChanged:
    """Publish the incident's state again (``Engine.incident_state``)."""

    incident_id: str


@dataclass(frozen=True, slots=True)
class IncidentClosed:
    """The incident is resolved or a false alarm: clear its retained state."""

    incident_id: str


@dataclass(frozen=True, slots=True)
class CameraChanged:
    """A camera's displayed status or registration changed: republish its district."""

    camera_id: str
    district: str


@dataclass(frozen=True, slots=True)
class ResponderChanged:
    """Publish the responder's state again (``Engine.responder_state``)."""

    responder_id: str


@dataclass(frozen=True, slots=True)
class ResponderGone:
    """The unit is now another partition's (reported into its district): clear its
    retained state under ``home``, the home district it was published under here. Its
    new owner publishes it under its own district (docs/partitions.md)."""

    responder_id: str
    home: str


@dataclass(frozen=True, slots=True)
class SendReply:
    """The one answer to one operator command."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class SendReceipt:
    """The SOS is accepted (new, folded or a resend): the source may stop resending."""

    receipt: Receipt


@dataclass(frozen=True, slots=True)
class Escalated:
    """An incident was escalated (SLA breach or an operator): supervisors must see it."""

    incident_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class NewHighPriority:
    """A new P1 (or an incident raised to P1): ring the console bell."""

    incident_id: str


@dataclass(frozen=True, slots=True)
class PersonalDataRedacted:
    """A closed incident's personal data was redacted (``[privacy] retention_days``).

    Nothing to publish (a closed incident's retained state is already cleared); it
    makes the tick non-empty, so the core journals it and replay redacts too.
    """

    incident_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """A raw event the engine could not use (e.g. a CCTV event from a camera of unknown position)."""

    reason: str


@dataclass(frozen=True, slots=True)
class AskPartition:
    """Send ``command`` (a LEND or a RETURN) to the core of the partition that owns
    ``district``; the core puts its own id in ``operator``, and the answer comes back
    as a Reply on its reply topic (console.engine.lending)."""

    command: Command
    district: str


Effect = (
    IncidentChanged
    | IncidentClosed
    | CameraChanged
    | ResponderChanged
    | ResponderGone
    | SendReply
    | SendReceipt
    | Escalated
    | NewHighPriority
    | PersonalDataRedacted
    | Rejected
    | AskPartition
)

__all__ = [
    "AskPartition",
    "CameraChanged",
    "Effect",
    "Escalated",
    "IncidentChanged",
    "IncidentClosed",
    "NewHighPriority",
    "PersonalDataRedacted",
    "Rejected",
    "ResponderChanged",
    "ResponderGone",
    "SendReceipt",
    "SendReply",
]
