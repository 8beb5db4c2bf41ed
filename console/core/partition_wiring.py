"""A core's place in a partitioned city: what it subscribes to, which messages published
without a district are its own (by their district, and by what every core remembers of
the same stream: console.core.placement_memory), and where its LEND and RETURN go
(docs/partitions.md).

An unpartitioned city is one partition, ``city``: its core reads every raw topic, with or
without a district, and nothing is ever placed elsewhere.
"""

from __future__ import annotations

import msgspec

from console.config import Config
from console.core.placement_memory import Holdings, PlacementMemory
from console.engine.districts import DistrictMap
from console.engine.effects import AskPartition
from console.engine.trust import Registry
from protocols import topics
from protocols.schemas import Command


class PartitionWiring:
    def __init__(self, cfg: Config, client_id: str, district_map: DistrictMap) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.district_map = district_map
        self.partition = cfg.core_partition()
        self.partitions = cfg.partition_map()
        self.districts = self.partitions.districts_of(self.partition)
        self.home = self.partition == self.partitions.home
        # Every core reads [owners] alike: only a camera's named owner moves the memory.
        self.memory = PlacementMemory(district_map, Registry(cfg.owners.cameras))

    def placed_elsewhere(
        self,
        message: object,
        *,
        source: str = "",
        now: float = 0.0,
        holdings: Holdings | None = None,
    ) -> str | None:
        """None if a message published without a district (by ``source``, at ``now``) is
        this partition's, else the district that makes it another's. ``message=None``
        (refused before it could be placed) is the home partition's, like a message nothing
        places. ``holdings``: what this core's journal holds, which is its own."""
        placed = self.memory.place(message, source, now, holdings)
        if placed.held or self.partitions.owner(placed.district) == self.partition:
            return None
        return placed.district or "unknown"

    def subscriptions(self, foreign: list[str]) -> list[tuple[str, int]]:
        """The raw topics of this partition's districts (every one, unpartitioned), what
        comes without a district (placed), its commands, presence, the broker's counter;
        ``foreign``: the foreign formats' filters, which only the home partition reads
        (they carry no district)."""
        if self.partitions.configured:
            raws = [topics.raws_in(d) for d in sorted(self.districts)]
            cmds = [topics.cmds_for(self.partition)] + ([topics.CMD_ALL] if self.home else [])
            # The answers of other partitions' cores to this one's LEND and RETURN.
            cmds.append(topics.reply(self.client_id))
            # Across the border: the neighbours' cameras and units near it, read as
            # context (their CCTV joins an SOS here, their units are recommended).
            near = self.partitions.border_districts(
                self.partition, self.district_map, self.cfg.correlation.border_m
            )
            raws += [
                f"{topics.ROOT}/raw/+/{kind}/{topics.level(district)}"
                for district in sorted(near)
                for kind in (topics.RAW_CAMERA, topics.RAW_CCTV, topics.RAW_RESPONDER)
            ]
        else:
            raws = [topics.RAW_ALL_DISTRICTS]
            cmds = [topics.CMD_ALL, topics.cmds_for(self.partition)]
        return [
            (topics.RAW_ALL, 1),
            *[(f, 1) for f in raws],
            *[(f, 1) for f in cmds],
            (topics.PRESENCE_ALL, 1),
            *[(f, 1) for f in (foreign if self.home else [])],
            (topics.SYS_DROPPED, 0),  # QoS 0: never journaled, never acknowledged
        ]

    def addressed(self, ask: AskPartition) -> tuple[str, Command]:
        """A LEND or RETURN to the core of the partition owning ``ask.district``, as this
        core (its client id is the operator the owner answers on reply/<id>)."""
        owner = self.partitions.owner(ask.district)
        command = msgspec.structs.replace(ask.command, operator=self.client_id)
        return topics.cmd(self.client_id, owner), command
