"""Typed configuration: `config.toml`, another file, and ANSIM_* overrides.

A bad file fails at start with the file, the line, the key and what was
expected; :class:`ConfigError` carries that sentence and the CLI prints it
instead of a traceback.

- :mod:`console.config.sections`: one struct per section, with its defaults.
- :mod:`console.config.model`: :class:`Config`, the engine's settings, a partition's core.
- :mod:`console.config.loading`: :func:`load`, the overrides, the errors.
"""

from __future__ import annotations

from console.config.loading import ENV_PREFIX, REMOVED_KEYS, load
from console.config.model import (
    PARTITION_FIELD,
    Config,
    effective_protocol,
    for_partition,
    mqtt_settings,
)
from console.config.sections import (
    DEFAULT_PATH,
    BrokerConfig,
    CityConfig,
    ConfigError,
    ConsoleConfig,
    CoreConfig,
    FrigateConfig,
    GatewayConfig,
    JournalConfig,
    OperatorConfig,
    OwnTracksConfig,
    SiaConfig,
    SimulateConfig,
    SshConfig,
    UrlToken,
    WebConfig,
    default_districts,
)
from console.engine.settings import (
    CorrelationConfig,
    DispatchConfig,
    OwnersConfig,
    PlausibilityConfig,
    PriorityConfig,
    PrivacyConfig,
    SlaConfig,
)

__all__ = [
    "DEFAULT_PATH",
    "ENV_PREFIX",
    "PARTITION_FIELD",
    "REMOVED_KEYS",
    "BrokerConfig",
    "CityConfig",
    "Config",
    "ConfigError",
    "ConsoleConfig",
    "CoreConfig",
    "CorrelationConfig",
    "DispatchConfig",
    "FrigateConfig",
    "GatewayConfig",
    "JournalConfig",
    "OperatorConfig",
    "OwnTracksConfig",
    "OwnersConfig",
    "PlausibilityConfig",
    "PriorityConfig",
    "PrivacyConfig",
    "SiaConfig",
    "SimulateConfig",
    "SlaConfig",
    "SshConfig",
    "UrlToken",
    "WebConfig",
    "default_districts",
    "effective_protocol",
    "for_partition",
    "load",
    "mqtt_settings",
]
