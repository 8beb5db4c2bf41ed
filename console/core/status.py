"""`ansim status`: which core is active, its term and lease, the journal's head, the brokers.

Reads only: it creates nothing in the database (a journal not made yet says so) and
connects to each broker with a bare TCP connect, never with an MQTT client id that could
take someone's session. Exit code 0 when an active core holds a live lease (`[core]
standby = true`, PostgreSQL journal), or, for a lone core (no lease), when the journal
can be read and a broker answers; 1 otherwise.
"""

from __future__ import annotations

import argparse
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from console.config import Config, for_partition, mqtt_settings

CONNECT_TIMEOUT_S = 2.0


@dataclass
class Status:
    lease: str = ""  # one line about the lease; "" with SQLite
    lease_live: bool = False
    journal: str = ""
    journal_ok: bool = False
    brokers: list[tuple[str, bool, str]] = field(default_factory=list)  # address, up, detail

    def lines(self) -> list[str]:
        out = []
        if self.lease:
            out.append(f"lease:   {self.lease}")
        out.append(f"journal: {self.journal}")
        for address, up, detail in self.brokers:
            out.append(f"broker:  {address} {'reachable' if up else 'UNREACHABLE'} ({detail})")
        return out

    def healthy(self, leased: bool) -> bool:
        if leased:
            return self.lease_live
        return self.journal_ok and any(up for _, up, _ in self.brokers)


def _pg_status(dsn: str, status: Status, leased: bool) -> None:
    import psycopg

    from console.journal.postgres import _safe_dsn

    where = _safe_dsn(dsn)
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as conn:
            found = conn.execute(
                "SELECT to_regclass('journal') IS NOT NULL, to_regclass('core_lease') IS NOT NULL"
            ).fetchone()
            has_journal, has_lease = bool(found and found[0]), bool(found and found[1])
            if has_journal:
                row = conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
                status.journal = f"{where}, head seq {int(row[0]) if row else 0}"
                status.journal_ok = True
            else:
                status.journal = f"{where}, no journal yet (no core has started on it)"
            if not leased:
                status.lease = "not used ([core] standby = false: one core)"
                return
            if not has_lease:
                status.lease = "none yet (no core with [core] standby = true has started)"
                return
    except psycopg.Error as exc:
        status.journal = f"{where}: cannot read: {str(exc).strip()}"
        status.lease = "unknown (the database does not answer)"
        return
    from console.journal.lease import Lease

    lease = Lease(dsn)
    try:
        state = lease.state()
    except Exception as exc:  # a JournalError from the lease: one line, not a traceback
        status.lease = f"unknown ({exc})"
        return
    finally:
        lease.close()
    if not state.holder:
        status.lease = "never held"
        return
    status.lease_live = state.live
    when = (
        f"expires in {state.left_s:.1f} s" if state.live else f"EXPIRED {-state.left_s:.1f} s ago"
    )
    status.lease = (
        f"{state.holder}, term {state.term}, held {state.held_for_s:.1f} s, "
        f"renewed {state.renewed_ago_s:.1f} s ago, {when}"
    )


def _sqlite_status(path: str, status: Status) -> None:
    if not Path(path).exists():
        status.journal = f"{path}, no journal yet"
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=3.0)
        try:
            row = conn.execute("SELECT coalesce(max(seq), 0) FROM journal").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        status.journal = f"{path}: cannot read: {exc}"
        return
    status.journal = f"{path}, head seq {int(row[0]) if row else 0} (SQLite: one core, no lease)"
    status.journal_ok = True


def _reachable(host: str, port: int) -> tuple[bool, str]:
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        return False, exc.strerror or str(exc) or type(exc).__name__
    return True, f"TCP connect {1000 * (time.monotonic() - started):.0f} ms"


def leased(cfg: Config) -> bool:
    """Whether the active core is chosen by the lease (two cores on PostgreSQL)."""
    return cfg.journal.backend == "postgres" and cfg.core.standby


def gather(cfg: Config) -> Status:
    status = Status()
    if cfg.journal.backend == "postgres":
        _pg_status(cfg.journal.dsn, status, cfg.core.standby)
    else:
        _sqlite_status(cfg.journal.path, status)
    settings = mqtt_settings(cfg)
    for host, port in ((settings.host, settings.port), *settings.fallbacks):
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        status.brokers.append((address, *_reachable(host, port)))
    return status


def run(args: argparse.Namespace, cfg: Config) -> int:
    partitions = cfg.partition_map()
    if not partitions.configured:
        status = gather(cfg)
        print("\n".join(status.lines()))
        return 0 if status.healthy(leased(cfg)) else 1
    healthy = True
    for name in partitions.names:  # each partition: its own journal, lease and core
        own = for_partition(cfg, name)
        status = gather(own)
        print(f"partition {name} ({', '.join(sorted(partitions.districts_of(name)))}):")
        print("\n".join(f"  {line}" for line in status.lines()))
        healthy = healthy and status.healthy(leased(own))
    return 0 if healthy else 1
