"""`ansim core`: open and check the journal, then run the core until a signal stops it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from console.config import Config, ConfigError, for_partition
from console.core.journal_checks import open_checked
from console.core.service import Core
from console.engine.settings import OwnersConfig
from console.journal.store import Journal, JournalError

log = logging.getLogger("ansim.core")


def run(args: argparse.Namespace, cfg: Config) -> int:
    try:
        cfg = for_partition(cfg, getattr(args, "partition", None))
    except ConfigError as exc:
        print(f"ansim core: {exc}", file=sys.stderr)
        return 2
    for gap in owner_gaps(cfg.owners):
        log.warning("%s", gap)
    try:
        journal, _ = open_checked(cfg, getattr(args, "journal", None))
    except JournalError as exc:
        print(f"ansim core: {exc}", file=sys.stderr)
        return 2
    client_id = getattr(args, "client_id", None)
    if cfg.core.standby:
        return _run_leased(cfg, journal, client_id)
    core = Core(cfg, journal, client_id=client_id)
    return _run_until_signalled(core)


def owner_gaps(owners: OwnersConfig) -> list[str]:
    """What a core without first come refuses wholesale: a kind of id nobody is named for.

    Legal (a city whose cameras come only through Frigate, say), but more often a table
    forgotten while turning first come off for partitions: said once at start, so the
    dead letters that follow have an explanation in the log."""
    if owners.first_come:
        return []
    tables = (("cameras", owners.cameras, "camera reports and CCTV events"),
              ("responders", owners.responders, "unit reports"),
              ("senders", owners.senders, "CAP alerts"))  # fmt: skip
    return [
        f"[owners] first_come is off and [owners.{name}] names no source: every one of"
        f" the {what} from a source will be refused"
        for name, table, what in tables
        if not table
    ]


def _run_leased(cfg: Config, journal: Journal, client_id: str | None) -> int:
    """`[core] standby = true`: a standby that becomes the active when it takes the lease."""
    from console.journal.postgres import PostgresJournal

    if not isinstance(journal, PostgresJournal):
        journal.close()
        print(
            'ansim core: [core] standby = true needs [journal] backend = "postgres" '
            "(the cores share the journal and its lease)",
            file=sys.stderr,
        )
        return 2
    from console.core.lease_keeper import STEPPED_DOWN, LeasedCore

    core = LeasedCore(cfg, journal, client_id=client_id)
    code = _run_until_signalled(core)
    return STEPPED_DOWN if core.stepped_down else code


def _run_until_signalled(core: Core) -> int:
    try:
        import uvloop

        runner: Callable[..., None] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency, but not on every platform
        runner = asyncio.run

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, core.stop)
        log.info(
            "core %s starting; %d open incidents",
            core.client_id,
            len(core.engine.open_incident_ids()),
        )
        await core.run()
        if not core.failed:
            log.info("core stopped cleanly")

    runner(main())
    return 1 if core.failed else 0
