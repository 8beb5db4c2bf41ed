"""What an authenticated source may do through the gateway; pure, tested in microseconds.

- **Scopes** (``[gateway.scopes]``): the endpoints each token may use, ``"sos"`` and
  ``"cap"``. An empty table keeps the behaviour from before scopes (every token may use
  both); once any source is listed the table is complete, and a source left out of it
  may use no endpoint at all.
- **CAP senders** (``[gateway.cap_senders]``): the sources whose tokens may speak for a
  CAP ``<sender>``, for an Alert, an Update or a Cancel, and for every sender named in
  its ``<references>`` (an Update or Cancel finds the alert it changes through them, so
  a reference to another sender's alert would change that sender's incident). An empty
  table binds nothing; once any sender is listed, an unlisted sender is refused.

Each check answers None (allowed) or the reason of the refusal, for people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final

ENDPOINTS: Final = ("sos", "cap")
_SHOWN: Final = 80  # characters of a client-given value quoted in a reason


def shown(value: str) -> str:
    """A client-given value fit to quote in a reason and a log line: printable, bounded."""
    text = "".join(c if c.isprintable() else "?" for c in value[: _SHOWN + 1])
    return f"'{text[:_SHOWN]}…'" if len(text) > _SHOWN else f"'{text}'"


class Grants:
    """Endpoint scopes per source, and the sources allowed to speak for each CAP sender."""

    def __init__(
        self,
        scopes: Mapping[str, Sequence[str]],
        cap_senders: Mapping[str, Sequence[str]],
    ) -> None:
        unknown = {e for endpoints in scopes.values() for e in endpoints} - set(ENDPOINTS)
        if unknown:
            raise ValueError(f"unknown endpoints {sorted(unknown)}; known: {list(ENDPOINTS)}")
        self._scopes = {source: frozenset(endpoints) for source, endpoints in scopes.items()}
        self._senders = {sender: frozenset(sources) for sender, sources in cap_senders.items()}

    @property
    def scoped(self) -> bool:
        """True once ``[gateway.scopes]`` lists any source (an unlisted one may use nothing)."""
        return bool(self._scopes)

    @property
    def senders_bound(self) -> bool:
        """True once ``[gateway.cap_senders]`` lists any sender (an unlisted one is refused)."""
        return bool(self._senders)

    def endpoints_of(self, source: str) -> tuple[str, ...]:
        """The endpoints the token of ``source`` may use, in a fixed order."""
        if not self._scopes:
            return ENDPOINTS
        allowed = self._scopes.get(source, frozenset())
        return tuple(e for e in ENDPOINTS if e in allowed)

    def may_use(self, source: str, endpoint: str) -> str | None:
        """None when the token of ``source`` may use ``endpoint``, else why not."""
        if endpoint in self.endpoints_of(source):
            return None
        if source not in self._scopes:
            return (
                f"the token of source '{source}' has no [gateway.scopes] entry, "
                f"so it may use no endpoint; '{endpoint}' refused"
            )
        allowed = self.endpoints_of(source)
        return (
            f"the token of source '{source}' is scoped to "
            f"{', '.join(allowed) if allowed else 'no endpoint'}, not '{endpoint}'"
        )

    def may_speak_for(self, source: str, sender: str) -> str | None:
        """None when the token of ``source`` may speak for CAP ``sender``, else why not."""
        if not self._senders:
            return None
        allowed = self._senders.get(sender)
        if allowed is None:
            return (
                f"CAP sender {shown(sender)} is not in [gateway.cap_senders]: "
                "no token may speak for it"
            )
        if source not in allowed:
            return f"the token of source '{source}' may not speak for CAP sender {shown(sender)}"
        return None

    def check_alert(
        self, source: str, sender: str, referenced: Iterable[str]
    ) -> tuple[str, str] | None:
        """None when ``source`` may post this CAP message, else ``(field, reason)``.

        ``referenced``: the senders named in its ``<references>``."""
        reason = self.may_speak_for(source, sender)
        if reason is not None:
            return "sender", reason
        for other in dict.fromkeys(referenced):
            if other == sender:
                continue
            reason = self.may_speak_for(source, other)
            if reason is not None:
                return "references", f"<references> names an alert of another sender: {reason}"
        return None

    def warnings(self, sources: Iterable[str]) -> list[str]:
        """What to warn about at start, for the configured token sources."""
        sources = list(sources)
        out: list[str] = []
        if not self._scopes:
            if sources:
                out.append(
                    "no [gateway.scopes]: every token may use every endpoint (sos and cap); "
                    "scope each token to what it needs"
                )
        else:
            unscoped = [s for s in sources if s not in self._scopes]
            if unscoped:
                out.append(
                    f"sources without a [gateway.scopes] entry may use no endpoint: "
                    f"{', '.join(sorted(unscoped))}"
                )
            stray = sorted(set(self._scopes) - set(sources))
            if stray:
                out.append(f"[gateway.scopes] names sources without a token: {', '.join(stray)}")
        if not self._senders:
            if any("cap" in self.endpoints_of(s) for s in sources):
                out.append(
                    "no [gateway.cap_senders]: a token that may post CAP may name any sender, "
                    "and so update or cancel any sender's alert"
                )
        else:
            named = {s for allowed in self._senders.values() for s in allowed}
            stray = sorted(named - set(sources))
            if stray:
                out.append(
                    f"[gateway.cap_senders] names sources without a token: {', '.join(stray)}"
                )
        return out
