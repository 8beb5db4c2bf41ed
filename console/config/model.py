"""The whole configuration (:class:`Config`), and what the parties derive from it: the
engine's settings, a partition's core, the transport's settings."""

from __future__ import annotations

import msgspec
from msgspec import field

from console.config.sections import (
    _TRAINING_ROLES,
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
    WebConfig,
    _partition_map,
    _Section,
)
from console.engine.partitions import Partitions
from console.engine.settings import (
    CorrelationConfig,
    DispatchConfig,
    EngineSettings,
    OwnersConfig,
    PlausibilityConfig,
    PriorityConfig,
    PrivacyConfig,
    SlaConfig,
    SupervisorConfig,
)
from protocols.mqtt_brokers import parse_address
from protocols.mqtt_types import MqttSettings
from protocols.schemas import Role


class Config(_Section):
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    core: CoreConfig = field(default_factory=CoreConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    priority: PriorityConfig = field(default_factory=PriorityConfig)
    correlation: CorrelationConfig = field(default_factory=CorrelationConfig)
    sla: SlaConfig = field(default_factory=SlaConfig)
    dispatch: DispatchConfig = field(default_factory=DispatchConfig)
    simulate: SimulateConfig = field(default_factory=SimulateConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    frigate: FrigateConfig = field(default_factory=FrigateConfig)
    owntracks: OwnTracksConfig = field(default_factory=OwnTracksConfig)
    sia: SiaConfig = field(default_factory=SiaConfig)
    ssh: SshConfig = field(default_factory=SshConfig)
    web: WebConfig = field(default_factory=WebConfig)
    city: CityConfig = field(default_factory=CityConfig)
    roles: dict[str, Role] = field(default_factory=lambda: dict(_TRAINING_ROLES))
    plausibility: PlausibilityConfig = field(default_factory=PlausibilityConfig)
    owners: OwnersConfig = field(default_factory=OwnersConfig)
    supervisor: SupervisorConfig = field(default_factory=SupervisorConfig)
    # Partition name = [district names]; {} = one partition, "city" (docs/partitions.md).
    partitions: dict[str, list[str]] = field(default_factory=dict)
    # Operator id = [district names] it acts in and sees; not listed: city-wide.
    scopes: dict[str, list[str]] = field(default_factory=dict)

    def engine_settings(self, partition: str | None = None) -> EngineSettings:
        """The sections the engine reads, and nothing else, for the core of ``partition``."""
        name = self.core_partition(partition)
        return EngineSettings(
            priority=self.priority,
            correlation=self.correlation,
            sla=self.sla,
            dispatch=self.dispatch,
            privacy=self.privacy,
            plausibility=self.plausibility,
            owners=self.owners,
            supervisor=self.supervisor,
            partition=name,
            id_prefix=name if self.partition_map().configured else "I",
            scopes={op: frozenset(ds) for op, ds in self.scopes.items()},
            districts=(
                self.partition_map().districts_of(name)
                if self.partition_map().configured
                else frozenset()
            ),
        )

    def partition_map(self) -> Partitions:
        return _partition_map(
            tuple((name, tuple(ds)) for name, ds in self.partitions.items()),
            tuple(d.name for d in self.city.districts),
        )

    def core_partition(self, override: str | None = None) -> str:
        """The partition a core serves: ``override`` (--partition), [core] partition, or
        the only one; ConfigError when partitions are configured and none is named."""
        partitions = self.partition_map()
        name = override or self.core.partition
        if not name:
            if len(partitions.names) > 1:
                raise ConfigError(
                    "[core] partition: name the partition this core serves "
                    f"(one of {', '.join(partitions.names)}), or start it with --partition"
                )
            return partitions.home
        if name not in partitions:
            raise ConfigError(
                f"[core] partition: no partition {name!r} (one of {', '.join(partitions.names)})"
            )
        return name

    def scope_of(self, operator: str) -> frozenset[str] | None:
        """The districts ``operator`` sees and acts in, or None: the whole city."""
        districts = self.scopes.get(operator)
        return None if districts is None else frozenset(districts)

    def role_of(self, operator: str) -> Role:
        """The role the core grants an operator (the broker's ACL vouches for the id)."""
        return self.roles.get(operator, self.core.default_role)


PARTITION_FIELD = "{partition}"


def for_partition(cfg: Config, override: str | None = None) -> Config:
    """The configuration of the core of one partition: ``[core] partition`` resolved,
    ``{partition}`` in the journal's path and DSN, the client id and the broker user name
    replaced, and the default client id made the partition's own ("ansim-core-north"),
    so two partitions' cores never share a journal chain, a lease or a broker session."""
    name = cfg.core_partition(override)
    partitioned = cfg.partition_map().configured
    journal = cfg.journal
    where = journal.dsn if journal.backend == "postgres" else journal.path
    key = "dsn" if journal.backend == "postgres" else "path"
    if partitioned and PARTITION_FIELD not in where:
        raise ConfigError(
            f"[journal] {key}: with [partitions], each core needs a journal of its own: put "
            f"{PARTITION_FIELD} in it (e.g. var/journal-{PARTITION_FIELD}.db)"
        )
    client_id = cfg.core.client_id
    if partitioned and client_id == CoreConfig().client_id:
        client_id = f"{client_id}-{name}"
    return msgspec.structs.replace(
        cfg,
        broker=msgspec.structs.replace(
            cfg.broker, username=cfg.broker.username.replace(PARTITION_FIELD, name)
        ),
        core=msgspec.structs.replace(
            cfg.core, partition=name, client_id=client_id.replace(PARTITION_FIELD, name)
        ),
        journal=msgspec.structs.replace(
            journal,
            path=journal.path.replace(PARTITION_FIELD, name),
            dsn=journal.dsn.replace(PARTITION_FIELD, name),
        ),
    )


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
        fallbacks=tuple(parse_address(entry) for entry in b.fallbacks),
        return_check_s=b.return_check_s,
    )
