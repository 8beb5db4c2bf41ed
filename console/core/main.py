"""`ansim core`: open and check the journal, then run the core until a signal stops it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable

from console.config import Config
from console.core.journal_checks import open_checked
from console.core.service import Core
from console.journal.store import JournalError

log = logging.getLogger("ansim.core")


def run(args: argparse.Namespace, cfg: Config) -> int:
    try:
        journal, _ = open_checked(cfg, getattr(args, "journal", None))
    except JournalError as exc:
        print(f"ansim core: {exc}", file=sys.stderr)
        return 2
    core = Core(cfg, journal, client_id=getattr(args, "client_id", None))
    return _run_until_signalled(core)


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
