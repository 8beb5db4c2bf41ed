"""An ordered list of brokers: which one to try next, and when to go back to the first.

Two independent brokers (no cluster) share nothing: a console on one sees nothing
the core publishes on the other. So every party takes the same ordered list, and
the rule is the one that brings them all to the same broker as soon as it can:

* A failed connect or a lost connection moves to the next broker at once (wrapping
  round); the transport's backoff comes between full rounds, never between two
  brokers of one round, so a dead first broker costs one failed connect, not a pause.
* A party on a later broker checks the earlier ones (a TCP connect, every
  ``return_check_s``) and goes back to the first that answers. Staying put would be
  simpler, but it splits the city for good: a console started once the first broker
  is back connects there, while the core that moved away would never leave the second.
  The first broker that is up is the one place everyone converges to.

:class:`BrokerRing` is the pure part (no clock, no I/O), tested on its own;
:func:`wait_for_preferred` is the check the transport runs while it is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Sequence
from typing import Final

from protocols.mqtt_types import MqttSettings

Address = tuple[str, int]

PROBE_TIMEOUT_S: Final = 2.0
# A return that fails again and again (a broker that accepts TCP but refuses MQTT)
# doubles the wait before the next check, up to this many times the base interval.
MAX_RETURN_BACKOFF: Final = 16


def parse_address(text: str) -> Address:
    """``"host:port"`` (``"[::1]:1883"`` for IPv6) as (host, port); ValueError says why not."""
    entry = text.strip()
    host, sep, port_text = entry.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not host:port (for example 10.0.0.2:1883)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: an IPv6 address goes in brackets, as [::1]:1883")
    if not host or any(c.isspace() or c in "[]/" for c in host):
        raise ValueError(f"{text!r}: {host!r} is not a host name or address")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def format_address(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BrokerRing:
    """Which broker of an ordered list a transport tries next. Pure: no clock, no I/O."""

    def __init__(self, brokers: Sequence[Address]) -> None:
        if not brokers:
            raise ValueError("at least one broker is needed")
        self.brokers: tuple[Address, ...] = tuple(brokers)
        self.index = 0
        self._failed = 0  # attempts of the current round that gave no lasting connection
        self._returning = False  # the current attempt is a return to an earlier broker
        self._failed_returns = 0

    @property
    def current(self) -> Address:
        return self.brokers[self.index]

    @property
    def preferred(self) -> tuple[Address, ...]:
        """The brokers before the current one, best first: where a return would go."""
        return self.brokers[: self.index]

    def ended(self, *, lasted: bool) -> bool:
        """The attempt on the current broker ended; move to the next one.

        ``lasted``: a connection came up and stayed up long enough to trust (one that is
        dropped at once, a duplicate client id kicking us out, say, counts as a failure,
        or two brokers would be tried in a tight loop). Returns True once every broker of
        the round has failed: the caller backs off before the next attempt.
        """
        self._settle_return(lasted=lasted)
        if lasted:
            self._failed = 0
        self._failed += 1
        self.index = (self.index + 1) % len(self.brokers)
        if self._failed >= len(self.brokers):
            self._failed = 0
            return True
        return False

    def return_to(self, index: int, *, lasted: bool) -> None:
        """Go back to an earlier broker that answered the check (a fresh round starts).

        ``lasted``: as for :meth:`ended`, about the connection being left.
        """
        if not 0 <= index < self.index:
            raise ValueError(f"broker {index} is not before the current one ({self.index})")
        self._settle_return(lasted=lasted)
        self.index = index
        self._failed = 0
        self._returning = True

    def _settle_return(self, *, lasted: bool) -> None:
        if self._returning:
            self._failed_returns = 0 if lasted else self._failed_returns + 1
            self._returning = False

    def return_check_s(self, base_s: float) -> float:
        """Seconds between two checks of the earlier brokers (longer after failed returns)."""
        return base_s * min(MAX_RETURN_BACKOFF, 2**self._failed_returns)

    def settings(self, configured: MqttSettings) -> MqttSettings:
        """``configured`` naming the current broker: ``address`` is the one in use.

        The fallbacks are the others in the order they would be tried from here.
        """
        rest = self.brokers[self.index + 1 :] + self.brokers[: self.index]
        host, port = self.current
        return dataclasses.replace(configured, host=host, port=port, fallbacks=rest)


async def reachable(address: Address, timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether something accepts a TCP connection there (a cheap sign a broker is back)."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(*address)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def wait_for_preferred(preferred: Sequence[Address], interval_s: float) -> int:
    """Every ``interval_s``, check ``preferred`` in order; return the index of the first up."""
    while True:
        await asyncio.sleep(interval_s)
        for index, address in enumerate(preferred):
            if await reachable(address):
                return index
