"""The gateway's guards, kept free of I/O so they are tested in microseconds.

- :class:`TokenTable`: ``Authorization: Bearer <token>`` → source id, in constant time;
- :class:`RateLimiter`: a token bucket per source (time comes in as an argument);
- :class:`RateMeter`: requests per second over the last minute, for ``/v1/health``;
- :func:`field_of`: the field a codec refusal names (``$.lat`` → ``lat``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

_BEARER = re.compile(r"^\s*bearer\s+(\S+)\s*$", re.IGNORECASE)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    match = _BEARER.match(authorization)
    return match.group(1) if match else None


def _digest(token: str) -> bytes:
    # Hashing first gives every comparison the same length, so neither the content
    # nor the length of a configured token shows in the time an answer takes.
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


class TokenTable:
    """Per-source bearer tokens. Every configured token is compared on every request."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        seen: dict[bytes, str] = {}
        for source, token in tokens.items():
            digest = _digest(token)
            if digest in seen:
                raise ValueError(f"sources '{seen[digest]}' and '{source}' share one token")
            seen[digest] = source
        self._entries = [(source, digest) for digest, source in seen.items()]

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def sources(self) -> list[str]:
        return [source for source, _ in self._entries]

    def source_for(self, authorization: str | None) -> str | None:
        """The source whose token the header carries, or None (no header, unknown token)."""
        token = bearer_token(authorization)
        given = _digest(token or "")
        found: str | None = None
        for source, digest in self._entries:  # no early exit: same work whatever matches
            if hmac.compare_digest(given, digest) and found is None:
                found = source
        return found if token else None


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    tokens: float
    last: float

    def take(self, now: float) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available."""
        elapsed = max(0.0, now - self.last)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s


class RateLimiter:
    """One token bucket per source: ``burst`` at once, ``per_minute`` sustained."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate_per_s = per_minute / 60.0
        self.burst = float(burst)
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, source: str, now: float) -> float:
        """0.0 when ``source`` may go ahead, else the seconds it has to wait."""
        bucket = self._buckets.get(source)
        if bucket is None:
            bucket = TokenBucket(self.rate_per_s, self.burst, self.burst, now)
            self._buckets[source] = bucket
        return bucket.take(now)


def retry_after(wait_s: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait_s)))


class RateMeter:
    """Events per second over a sliding window of whole seconds (default one minute)."""

    def __init__(self, window_s: int = 60) -> None:
        self.window_s = window_s
        self._counts: dict[int, int] = {}

    def add(self, now: float, count: int = 1) -> None:
        second = int(now)
        self._counts[second] = self._counts.get(second, 0) + count
        if len(self._counts) > self.window_s + 1:
            self._prune(second)

    def rate(self, now: float) -> float:
        second = int(now)
        self._prune(second)
        return sum(self._counts.values()) / self.window_s

    def _prune(self, second: int) -> None:
        oldest = second - self.window_s + 1
        for key in [k for k in self._counts if k < oldest]:
            del self._counts[key]


_AT_PATH = re.compile(r" - at `\$((?:\.[^`\[]+|\[\d+\])*)`")
_MISSING = re.compile(r"missing required field `([^`]+)`")


def field_of(reason: str) -> str | None:
    """The field a msgspec refusal names: ``at `$.lat``` → ``lat``; a missing field's name."""
    missing = _MISSING.search(reason)
    at = _AT_PATH.search(reason)
    path = at.group(1).lstrip(".") if at else ""
    if missing:
        return f"{path}.{missing.group(1)}" if path else missing.group(1)
    return path or None
