"""A public warning as Ansim carries it: the wire type the CAP 1.2 adapter produces.

Apart from the parser (``protocols.cap``, which needs an XML library) so that
whoever only handles alerts, the engine among them, imports no XML parsing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

MsgType = Literal["Alert", "Update", "Cancel"]


class CapReference(Struct, frozen=True, kw_only=True):
    """An earlier message this one updates or cancels."""

    sender: str
    identifier: str
    sent: float  # UNIX seconds

    @property
    def key(self) -> tuple[str, str]:
        return (self.sender, self.identifier)


class PublicAlert(Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A public warning (police, weather, civil defence) as the console needs it."""

    identifier: Annotated[str, Meta(min_length=1, max_length=500)]
    sender: Annotated[str, Meta(min_length=1, max_length=500)]
    sent: float  # UNIX seconds
    msg_type: MsgType
    priority: Annotated[int, Meta(ge=1, le=4)]
    headline: Annotated[str, Meta(max_length=200)] = ""
    description: Annotated[str, Meta(max_length=4000)] = ""
    event: Annotated[str, Meta(max_length=200)] = ""
    area_desc: Annotated[str, Meta(max_length=200)] = ""
    districts: tuple[str, ...] = ()
    lat: float | None = None  # centre of the area(s)
    lon: float | None = None
    expires: float | None = None
    references: tuple[CapReference, ...] = ()
    urgency: str = ""
    severity: str = ""
    certainty: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """How later Updates and Cancels refer to this alert."""
        return (self.sender, self.identifier)
