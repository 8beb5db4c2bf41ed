"""The MQTT transport against a real broker: crashes, restarts, sessions, manual ack, wills."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from protocols.mqtt import (
    ConnectionState,
    Incoming,
    MessageStream,
    MqttSettings,
    NotConnected,
    Transport,
    Will,
    backoff_delay,
)
from tests.brokers import (
    MosquittoBroker,
    free_port,
    make_password_file,
    make_tls_files,
    nothing_more,
    receive,
    until,
)

REPO = Path(__file__).resolve().parents[2]


def with_protocol(settings: MqttSettings, protocol: int) -> MqttSettings:
    return dataclasses.replace(settings, protocol=protocol)


def payloads(messages: list[Incoming]) -> list[bytes]:
    return [m.payload for m in messages]


class States:
    """Records on_state calls."""

    def __init__(self) -> None:
        self.seen: list[ConnectionState] = []

    def __call__(self, state: ConnectionState, detail: str) -> None:
        self.seen.append(state)

    def since(self, index: int) -> list[ConnectionState]:
        return self.seen[index:]


def test_backoff_grows_caps_and_jitters() -> None:
    low = [backoff_delay(n, 0.5, 15.0, rand=lambda: 0.0) for n in range(8)]
    high = [backoff_delay(n, 0.5, 15.0, rand=lambda: 1.0) for n in range(8)]
    assert high == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
    assert low == [h / 2 for h in high]
    assert backoff_delay(10_000, 0.5, 15.0) <= 15.0


async def test_reconnects_and_resubscribes_after_broker_crash(
    broker: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    states = States()
    async with (
        Transport(mqtt_settings, "sub-a", subscriptions=["crash/#"], on_state=states) as sub,
        Transport(mqtt_settings, "pub-a") as pub,
    ):
        await sub.wait_connected(5)
        await pub.wait_connected(5)
        incoming = sub.messages()
        await pub.publish("crash/1", b"before")
        assert payloads(await receive(incoming, 1)) == [b"before"]

        mark = len(states.seen)
        await asyncio.to_thread(broker.kill)
        await until(lambda: sub.state is ConnectionState.DISCONNECTED, what="disconnect")
        assert not sub.connected
        await asyncio.to_thread(broker.start)
        await sub.wait_connected(10)
        await pub.wait_connected(10)

        after = states.since(mark)
        assert after[0] is ConnectionState.DISCONNECTED
        assert after[-1] is ConnectionState.CONNECTED
        # No session survives a SIGKILL here, so receiving proves the transport resubscribed.
        await pub.publish("crash/2", b"after")
        assert payloads(await receive(incoming, 1)) == [b"after"]
        assert sub.stats.reconnects >= 1
        assert sub.stats.received == 2
        assert pub.stats.published == 2


@pytest.mark.parametrize("protocol", [5, 4])
@pytest.mark.parametrize("broker_restart", [False, True], ids=["broker-up", "broker-restarted"])
async def test_persistent_session_keeps_messages_while_away(
    mosquitto: MosquittoBroker, mqtt_settings: MqttSettings, protocol: int, broker_restart: bool
) -> None:
    settings = with_protocol(mqtt_settings, protocol)

    def subscriber() -> Transport:
        return Transport(settings, "core-b", subscriptions=[("away/#", 1)], persistent=True)

    async with subscriber() as sub:
        await sub.wait_connected(5)
    if broker_restart:
        await asyncio.to_thread(mosquitto.restart)  # SIGTERM: the session is saved to disk

    sent = [f"m{i}".encode() for i in range(50)]
    async with Transport(settings, "pub-b") as pub:
        await pub.wait_connected(5)
        for body in sent:
            await pub.publish("away/x", body, qos=1)

    async with subscriber() as sub:
        await sub.wait_connected(5)
        assert sub.session_present
        got = await receive(sub.messages(), len(sent))
        assert payloads(got) == sent


@pytest.mark.parametrize("protocol", [5, 4])
async def test_a_resumed_session_is_connected_before_its_backlog_is_taken(
    mosquitto: MosquittoBroker, tmp_path: Path, protocol: int
) -> None:
    """Mosquitto sends a session's backlog, as fast as it is acknowledged, before the
    SUBACK (and before the PUBACK of anything we publish meanwhile). Waiting for the
    SUBACK kept a restarted core silent for its whole backlog, and past 10 s dropped
    the connection mid-backlog. Seen with deploy/'s 1,000 in flight, not with 20."""
    broker = MosquittoBroker(tmp_path / "deploy-like", max_inflight=1000)
    broker.start()
    try:
        settings = MqttSettings(host=broker.host, port=broker.port, protocol=protocol)

        def subscriber() -> Transport:
            return Transport(
                settings, "core-backlog", subscriptions=[("backlog/#", 1)], persistent=True,
                manual_ack=True,
            )  # fmt: skip

        async with subscriber() as sub:
            await sub.wait_connected(5)
        sent = [f"m{i}".encode() for i in range(3000)]
        async with Transport(settings, "pub-backlog") as pub:
            await pub.wait_connected(5)
            await pub.publish_many([("backlog/x", body, False) for body in sent])

        async with subscriber() as sub:
            got: list[Incoming] = []

            async def take_and_ack() -> None:
                async for message in sub.messages():
                    message.ack()
                    got.append(message)
                    if len(got) == len(sent):
                        return

            taking = asyncio.create_task(take_and_ack())
            await sub.wait_connected(5)
            assert sub.session_present
            assert len(got) < len(sent) // 2, "connected only after the backlog"
            await asyncio.wait_for(taking, 20)
            assert payloads(got) == sent
            await nothing_more(sub.messages())
            assert sub.stats.reconnects == 0
    finally:
        broker.kill()


@pytest.mark.parametrize("protocol", [5, 4])
async def test_own_reconnect_resumes_the_session(
    mosquitto: MosquittoBroker, mqtt_settings: MqttSettings, protocol: int
) -> None:
    """The trap: a reconnect with a new aiomqtt Client must not start a clean session."""
    settings = with_protocol(mqtt_settings, protocol)
    async with Transport(settings, "core-c", subscriptions=["own/#"], persistent=True) as sub:
        await sub.wait_connected(5)
        await asyncio.to_thread(mosquitto.restart)
        await until(lambda: sub.stats.reconnects == 1, what="reconnect")
        assert sub.connected
        assert sub.session_present


async def test_clean_transport_does_not_resume(
    broker: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    async with Transport(mqtt_settings, "console-d", subscriptions=["d/#"]) as t:
        await t.wait_connected(5)
    async with Transport(mqtt_settings, "console-d", subscriptions=["d/#"]) as t:
        await t.wait_connected(5)
        assert not t.session_present


@pytest.mark.parametrize("protocol", [5, 4])
@pytest.mark.parametrize("ack_from_thread", [False, True], ids=["loop", "thread"])
async def test_manual_ack_redelivers_only_unacked(
    mosquitto: MosquittoBroker, mqtt_settings: MqttSettings, protocol: int, ack_from_thread: bool
) -> None:
    settings = with_protocol(mqtt_settings, protocol)

    def journaling_core() -> Transport:
        return Transport(
            settings, "core-e", subscriptions=["ack/#"], persistent=True, manual_ack=True
        )

    async with journaling_core() as core:
        await core.wait_connected(5)
        async with Transport(settings, "pub-e") as pub:
            await pub.wait_connected(5)
            for i in range(6):
                await pub.publish("ack/x", f"m{i}".encode())
        first = await receive(core.messages(), 6)
        assert payloads(first) == [f"m{i}".encode() for i in range(6)]
        for message in first[::2]:
            if ack_from_thread:
                await asyncio.to_thread(message.ack)
            else:
                message.ack()
            message.ack()  # idempotent
        # A PUBACK'd publish after the acks: paho writes packets in order, so the acks
        # have reached the broker before this returns and the session is closed.
        await core.publish("flush/e", b"")

    async with journaling_core() as core:
        await core.wait_connected(5)
        incoming = core.messages()
        again = await receive(incoming, 3)
        assert payloads(again) == [b"m1", b"m3", b"m5"]
        for message in again:
            message.ack()
        await nothing_more(incoming)

    async with journaling_core() as core:
        await core.wait_connected(5)
        await nothing_more(core.messages())


def bulk(count: int, prefix: str) -> list[tuple[str, bytes, bool]]:
    """Messages of every size class: 1-, 2- and 3-byte lengths, and one past the read chunk."""
    sizes = [0, 1, 90, 127, 128, 1000, 16_383, 16_384, 40_000]
    out = [
        (f"{prefix}/{i % 5}", i.to_bytes(4, "big") * (sizes[i % len(sizes)] // 4), False)
        for i in range(count)
    ]
    out[count // 2] = (f"{prefix}/big", bytes(range(256)) * 1200, False)  # 300 KB
    return out


async def receive_acking(messages: MessageStream, count: int, within: float) -> list[Incoming]:
    """Receive and ack one by one (the broker sends only its in-flight window unacked)."""
    got: list[Incoming] = []
    async with asyncio.timeout(within):
        while len(got) < count:
            message = await anext(messages)
            message.ack()
            got.append(message)
    return got


@pytest.mark.parametrize("protocol", [5, 4])
async def test_bulk_in_order_through_the_fast_paths(
    mosquitto: MosquittoBroker, mqtt_settings: MqttSettings, protocol: int
) -> None:
    """Many messages of all sizes, split across reads anywhere: all arrive, in order, once."""
    settings = with_protocol(mqtt_settings, protocol)

    def core() -> Transport:
        return Transport(
            settings, "core-bulk", subscriptions=["bulk/#"], persistent=True, manual_ack=True
        )

    sent = bulk(1500, "bulk")
    async with core() as sub, Transport(settings, "pub-bulk") as pub:
        await sub.wait_connected(5)
        await pub.wait_connected(5)
        await pub.publish_many(sent)  # our PUBLISH encoder, window and PUBACK fast path
        got = await receive_acking(sub.messages(), len(sent), within=30)
        assert [(m.topic, m.payload, m.qos) for m in got] == [(t, p, 1) for t, p, _ in sent]
        await sub.publish("flush/bulk", b"")  # the acks are written before this publish

    async with core() as sub:
        await sub.wait_connected(5)
        await nothing_more(sub.messages())


async def test_ack_is_a_no_op_in_auto_ack_mode(
    broker: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    async with Transport(mqtt_settings, "auto-f", subscriptions=["f/#"]) as t:
        await t.wait_connected(5)
        await t.publish("f/1", b"x")
        (message,) = await receive(t.messages(), 1)
        message.ack()
        assert t.connected


async def test_publish_without_broker_raises_at_once() -> None:
    settings = MqttSettings(port=free_port(), reconnect_min_s=0.05, reconnect_max_s=0.2)
    async with Transport(settings, "lonely") as t:
        started = time.monotonic()
        with pytest.raises(NotConnected):
            await t.publish("x/y", b"z")
        assert time.monotonic() - started < 0.1
        with pytest.raises(TimeoutError):
            await t.wait_connected(0.2)


async def test_publish_after_broker_loss_raises(
    broker: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    async with Transport(mqtt_settings, "pub-g") as t:
        await t.wait_connected(5)
        await t.publish("g/1", b"ok")
        await asyncio.to_thread(broker.kill)
        await until(lambda: not t.connected, what="disconnect")
        with pytest.raises(NotConnected):
            await t.publish("g/2", b"refused")


WILL_CLIENT = """
import asyncio, sys
from protocols.mqtt import MqttSettings, Transport, Will

async def main() -> None:
    settings = MqttSettings(port=int(sys.argv[1]), protocol=int(sys.argv[2]))
    will = Will("ansim/v1/presence/op9", b"offline")
    online = [("ansim/v1/presence/op9", b"online", True)]
    async with Transport(settings, "console-op9", will=will, on_connect_publish=online) as t:
        await t.wait_connected(5)
        print("ready", flush=True)
        if sys.argv[3] == "crash":
            await asyncio.Event().wait()

asyncio.run(main())
"""


def run_will_client(port: int, protocol: int, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", WILL_CLIENT, str(port), str(protocol), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.parametrize("protocol", [5, 4])
async def test_last_will_on_crash_but_not_on_clean_exit(
    mosquitto: MosquittoBroker, mqtt_settings: MqttSettings, protocol: int
) -> None:
    async with Transport(mqtt_settings, "observer-h", subscriptions=["ansim/v1/presence/+"]) as obs:
        await obs.wait_connected(5)
        incoming = obs.messages()

        proc = await asyncio.to_thread(run_will_client, mosquitto.port, protocol, "clean")
        assert await asyncio.to_thread(proc.wait, 10) == 0
        assert payloads(await receive(incoming, 1)) == [b"online"]
        await nothing_more(incoming)  # a clean exit sends no will

        proc = await asyncio.to_thread(run_will_client, mosquitto.port, protocol, "crash")
        try:
            assert payloads(await receive(incoming, 1)) == [b"online"]
        finally:
            proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(proc.wait, 10)
        (will,) = await receive(incoming, 1)
        assert (will.topic, will.payload) == ("ansim/v1/presence/op9", b"offline")

    # The will was retained, so a console that starts later still sees op9 offline.
    async with Transport(mqtt_settings, "late-h", subscriptions=["ansim/v1/presence/+"]) as late:
        (retained,) = await receive(late.messages(), 1)
        assert retained.retain and retained.payload == b"offline"


async def test_on_connect_publish_is_sent_on_every_connect(
    mosquitto: MosquittoBroker, mqtt_settings: MqttSettings
) -> None:
    topic = "ansim/v1/presence/op1"
    console = Transport(mqtt_settings, "console-op1", on_connect_publish=[(topic, b"online", True)])
    async with console, Transport(mqtt_settings, "observer-i", subscriptions=[topic]) as obs:
        incoming = obs.messages()
        assert payloads(await receive(incoming, 1)) == [b"online"]
        await obs.wait_connected(5)
        await obs.publish(topic, b"", retain=True)  # clear it, so only a new connect restores it
        assert payloads(await receive(incoming, 1)) == [b""]

        await asyncio.to_thread(mosquitto.restart)  # SIGTERM saves state: no retained presence
        await until(lambda: console.stats.reconnects == 1, what="console reconnect")
        assert payloads(await receive(incoming, 1)) == [b"online"]


def test_will_and_settings_are_plain_values() -> None:
    will = Will("t", b"p")
    assert (will.qos, will.retain) == (1, True)
    assert MqttSettings().address == "127.0.0.1:1883"


@pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None,
    reason="needs openssl and mosquitto_passwd",
)
async def test_tls_with_username_and_password(tmp_path: Path, mosquitto: MosquittoBroker) -> None:
    tls = make_tls_files(tmp_path / "tls")
    secure = MosquittoBroker(
        tmp_path / "secure",
        listener_config=f"cafile {tls['ca.crt']}\ncertfile {tls['server.crt']}\nkeyfile {tls['server.key']}",
        allow_anonymous=False,
        password_file=make_password_file(tmp_path, "op1", "s3cret"),
    )
    with secure:
        good = MqttSettings(
            port=secure.port, username="op1", password="s3cret", tls_ca=str(tls["ca.crt"])
        )
        async with Transport(good, "tls-ok", subscriptions=["tls/#"]) as t:
            await t.wait_connected(5)
            await t.publish("tls/1", b"secret")
            assert payloads(await receive(t.messages(), 1)) == [b"secret"]
            # Many TLS records per wake-up, decrypted bytes left pending: all, in order.
            sent = bulk(400, "tls")
            await t.publish_many(sent)
            got = await receive(t.messages(), len(sent), within=30)
            assert [(m.topic, m.payload) for m in got] == [(topic, body) for topic, body, _ in sent]

        reasons: list[str] = []
        bad = dataclasses.replace(good, password="wrong", reconnect_min_s=0.05)
        async with Transport(bad, "tls-bad", on_state=lambda s, d: reasons.append(d)) as t:
            with pytest.raises(TimeoutError):
                await t.wait_connected(0.5)
        assert any("authori" in r.lower() or "password" in r.lower() for r in reasons), reasons

        plain = dataclasses.replace(good, tls_ca="")
        async with Transport(plain, "no-tls") as t:
            with pytest.raises(TimeoutError):
                await t.wait_connected(0.5)
