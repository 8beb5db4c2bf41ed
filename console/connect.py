"""Build the MQTT transport settings from the configuration, in one line."""

from __future__ import annotations

from console.config import Config
from protocols.mqtt import MqttSettings


def effective_protocol(cfg: Config) -> int:
    """The MQTT protocol level clients should use: 4 (3.1.1) against the embedded amqtt.

    amqtt refuses MQTT 5 connections, so in embedded mode everyone speaks 3.1.1
    (persistent sessions still work there through clean_session=False).
    """
    return 4 if cfg.broker.mode == "embedded" else cfg.broker.protocol


def mqtt_settings(cfg: Config) -> MqttSettings:
    """The [broker] section as transport settings (the keys have the same names)."""
    b = cfg.broker
    return MqttSettings(
        host=b.host,
        port=b.port,
        protocol=effective_protocol(cfg),
        keepalive=b.keepalive,
        username=b.username,
        password=b.password,
        tls_ca=b.tls_ca,
        tls_cert=b.tls_cert,
        tls_key=b.tls_key,
        reconnect_min_s=b.reconnect_min_s,
        reconnect_max_s=b.reconnect_max_s,
    )
