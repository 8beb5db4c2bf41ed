"""Issue 13, measured: what a following standby costs the active, on one PostgreSQL journal.

The same queue of storm events is drained twice per round on the same machine: by a
lone core (`standby = false`) and by an active core with a standby following the
journal (`standby = true`, two processes), each on a fresh database of the same server.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import Row, Settings, register
from bench._cluster import (
    HOST,
    Core,
    Mosquitto,
    pg_admin_dsn,
    pg_database,
    wait_until,
    write_config,
)
from bench.core_throughput import _publish, _watch_summary
from bench.engine import _payloads

CLIENT_ID = "ansim-core"
# Smoke runs at tuning (5,000 events): 0.7-0.9.
REFERENCE = {"standby.drain-vs-lone": 0.8}

METHOD = """\
- Cost of a standby (`bench/standby_cost.py`, issue 13): the simulator's storm mix
  (as in `core.drain-vs-mosquitto_sub`) is drained from a Mosquitto queue by a core on
  PostgreSQL (127.0.0.1:5432, a fresh database each time). The core is started, takes
  its session (and, with `standby = true`, the lease: `lease_ttl_s` 60, so the pause
  below costs it nothing), then is frozen (SIGSTOP) while the events are queued for its
  session, and woken (SIGCONT): events/s from the wake-up until its summary counts them
  all. **Baseline**: a lone core (`standby = false`). **Measured**: the active of two
  cores, the second following the journal (a tail read every 0.2 s, applying each record
  to its own engine) on the same 2-core machine, as it would on its own host but here
  sharing the CPU. Lone and pair alternate, the best of each over the rounds; the ratio
  is pair / lone. Skipped (no rows) when no PostgreSQL answers.
"""


def _config(workdir: Path, port: int, dsn: str, *, standby: bool) -> Path:
    return write_config(
        workdir / f"{'pair' if standby else 'lone'}.toml",
        {
            "broker": {"mode": "external", "host": HOST, "port": port, "keepalive": 60},
            "journal": {"backend": "postgres", "dsn": dsn, "path": str(workdir / "unused.db")},
            "core": {
                "client_id": CLIENT_ID,
                "standby": standby,
                "lease_ttl_s": 60.0,
                "publish_interval_s": 0.2,
                "log_interval_s": 3600,
            },
        },
    )


def _drain(workdir: Path, admin: str, payloads: list[tuple[str, bytes]], *, pair: bool) -> float:
    """Events/s of the (active) core draining ``payloads`` queued while it was frozen."""
    workdir.mkdir(parents=True)
    with pg_database(admin) as dsn:
        broker = Mosquitto(workdir / "broker")
        config = _config(workdir, broker.port, dsn, standby=pair)
        cores: list[Core] = []
        try:
            ready = threading.Thread(
                target=_watch_summary, args=(broker.port, 0, 30, [CLIENT_ID]), daemon=True
            )
            ready.start()
            cores.append(Core(config, workdir / "active.log"))
            ready.join(35)
            if ready.is_alive():
                raise RuntimeError(f"the core did not start:\n{cores[0].log()[-2000:]}")
            if pair:
                cores.append(Core(config, workdir / "standby.log"))
                wait_until(lambda: "following the journal" in cores[1].log(), 60, "the standby")
            cores[0].signal(signal.SIGSTOP)
            _publish(broker.port, payloads)
            done: list[tuple[float, float]] = []
            watch = threading.Thread(
                target=lambda: done.append(
                    _watch_summary(broker.port, len(payloads), 600, [CLIENT_ID])
                ),
                daemon=True,
            )
            watch.start()
            time.sleep(0.3)  # the watcher subscribed (it ignores the retained summary)
            woken = time.perf_counter()
            cores[0].signal(signal.SIGCONT)
            watch.join(610)
            if not done:
                raise RuntimeError(f"the drain did not finish:\n{cores[0].log()[-2000:]}")
            if pair and "took the lease" in cores[1].log():
                raise RuntimeError("the standby took over during the drain")
            return len(payloads) / max(done[0][1] - woken, 1e-6)
        finally:
            for core in cores:
                core.kill()
            broker.kill()


@register("standby_cost")
def bench_standby_cost(settings: Settings) -> list[Row]:
    admin = pg_admin_dsn()
    if admin is None:
        print("  standby_cost: skipped, no PostgreSQL on 127.0.0.1:5432", file=sys.stderr)
        return []
    count = 5_000 if settings.smoke else int(os.environ.get("ANSIM_BENCH_STANDBY_EVENTS", "50000"))
    rounds = 1 if settings.smoke else 2
    payloads = _payloads(count, 0, settings.seed)[200:]
    lone: list[float] = []
    pair: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ansim-standby-") as tmp:
        for n in range(rounds):
            lone.append(_drain(Path(tmp) / f"lone-{n}", admin, payloads, pair=False))
            pair.append(_drain(Path(tmp) / f"pair-{n}", admin, payloads, pair=True))
    return [
        Row.of(
            "standby.drain-vs-lone",
            max(pair),
            "events/s",
            max(lone),
            "a lone core on the same PostgreSQL server",
            lower_is_better=False,
            reference=REFERENCE["standby.drain-vs-lone"],
            note=f"{len(payloads):,} storm events (QoS 1) queued, drained by an active core "
            "with a standby following the journal; rounds: pair "
            + ", ".join(f"{x:,.0f}" for x in pair)
            + ", lone "
            + ", ".join(f"{x:,.0f}" for x in lone)
            + " events/s",
        )
    ]
