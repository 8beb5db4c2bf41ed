"""Messages the console's own parts post to the app (widget messages live on the widgets)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from protocols.schemas import Reply


@dataclass
class LinkStateChanged(Message):
    """The broker connection came up or went down."""

    connected: bool
    label: str  # "connected", "connecting", "disconnected"
    reason: str = ""


@dataclass
class ReplyReceived(Message):
    """The core answered one of this operator's commands."""

    reply: Reply
