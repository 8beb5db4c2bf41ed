"""A publisher that retries on NotConnected must not starve the transport it waits for.

After a broker SIGKILL, paho fails a publish on the dead socket at once, while the
transport still says connected (its connection loop has not run yet). The simulator's
retry loop (publish, on NotConnected wait_connected, again) then spun without yielding:
no reconnect, no receipts, no stats, for as long as the test waited.
"""

from __future__ import annotations

import asyncio
import contextlib

from protocols.mqtt import MqttSettings, NotConnected, Transport
from tests.brokers import MosquittoBroker

TRIES = 20_000  # far more than a loop that yields needs; bounded so a spin fails, not hangs


async def test_retrying_after_a_broker_sigkill_lets_the_transport_see_the_loss(
    mosquitto: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    async with Transport(mqtt_settings, "retry-probe") as transport:
        await transport.wait_connected(10)
        await transport.publish("ansim/v1/test/retry", b"before", qos=1)
        mosquitto.kill()
        tries = 0
        while transport.connected and tries < TRIES:
            tries += 1
            try:
                await transport.publish("ansim/v1/test/retry", b"x", qos=1, timeout=2)
            except NotConnected:
                with contextlib.suppress(TimeoutError):
                    await transport.wait_connected(0.5)
        assert not transport.connected, f"still 'connected' after {tries} failed publishes"
        mosquitto.start()
        await transport.wait_connected(10)
        await transport.publish("ansim/v1/test/retry", b"after", qos=1)


async def test_wait_connected_yields_even_when_connected(
    mosquitto: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    """The deterministic half of the above: a retry loop's wait always lets others run."""
    async with Transport(mqtt_settings, "yield-probe") as transport:
        await transport.wait_connected(10)
        ran = asyncio.Event()
        asyncio.get_running_loop().call_soon(ran.set)
        await transport.wait_connected()
        assert ran.is_set(), "wait_connected() returned without yielding to the loop"
