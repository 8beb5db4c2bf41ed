"""Retained state keyed by topic, looked up by id: the topics of incidents and units carry
their home district (``topics.state_incident(district, id)``), which a test that only
knows the id need not work out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from protocols import topics


def topic_of(keys: Iterable[str], kind: str, item_id: str) -> str | None:
    """The key among ``keys`` that is the state topic of ``kind`` ("incident",
    "responder") ``item_id`` in any district."""
    prefix = f"{topics.ROOT}/state/{kind}/"
    for key in keys:
        if key.startswith(prefix) and key.endswith(f"/{item_id}") and key.count("/") == 5:
            return key
    return None


def find(state: Mapping[str, Any], kind: str, item_id: str) -> Any:
    """``state``'s value for that topic, or None."""
    key = topic_of(state, kind, item_id)
    return None if key is None else state[key]


def must(state: Mapping[str, Any], kind: str, item_id: str) -> Any:
    """``state``'s value for that topic; KeyError naming it when there is none."""
    key = topic_of(state, kind, item_id)
    if key is None:
        raise KeyError(f"no retained state of {kind} {item_id}")
    return state[key]
