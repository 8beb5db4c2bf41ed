"""Profile `ansim core` draining a queued storm: ``python -m bench.profile_core [events]``.

Not a benchmark (``bench.run`` ignores it: it registers nothing). It repeats the
throughput bench's steps (a Mosquitto with deploy/'s queue settings, the core's
session made, the storm published once) and runs the draining core under
``py-spy record`` (``pip install py-spy``; it is not a project dependency), then
prints the functions of this project by inclusive share of the samples. py-spy
counts an idle thread-pool worker as busy: that line is left out of the shares.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.core_throughput import _broker, _core_sessions, _publish, _watch_summary
from bench.engine import _payloads

IDLE = "_worker (concurrent/futures/thread.py)"


def shares(raw: Path, pattern: str = r"console/|protocols/") -> list[tuple[float, str]]:
    """(inclusive %, function) from py-spy's raw (collapsed stacks) output."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]
        if frames and frames[-1] == IDLE:
            continue
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    wanted = re.compile(pattern)
    return [(100 * n / total, f) for f, n in inclusive.most_common() if wanted.search(f)]


def main(argv: list[str]) -> int:
    events = int(argv[0]) if argv else 200_000
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy not found: pip install py-spy", file=sys.stderr)
        return 2
    payloads = _payloads(events, 0, 42)[200:]
    out = Path(tempfile.gettempdir()) / "ansim-core-profile.txt"
    with tempfile.TemporaryDirectory() as tmp, _broker(Path(tmp)) as port:
        cores = _core_sessions(Path(tmp), port, ["core"])
        _publish(port, payloads)
        launched = time.perf_counter()
        record = [spy, "record", "-r", "200", "-f", "raw", "-o", str(out), "--"]
        with cores.log.open("ab") as log:
            spied = subprocess.Popen([*record, *cores.argvs[0]], stdout=log, stderr=log)
            _, last = _watch_summary(port, len(payloads), 900, cores.names)
            subprocess.run(["pkill", "-TERM", "-P", str(spied.pid)], check=False)
            spied.wait(60)
    rate = len(payloads) / (last - launched - cores.startup_s)
    print(f"{len(payloads):,} events at {rate:,.0f} events/s (under py-spy); profile: {out}")
    for share, function in shares(out)[:40]:
        print(f"{share:5.1f} %  {function}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
