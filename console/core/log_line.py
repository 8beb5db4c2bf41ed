"""The core's periodic log line: rates and counts an engineer reads in `journalctl`."""

from __future__ import annotations

from protocols.schemas import Summary


def rates_line(s: Summary, ignored_total: int, duplicates_total: int) -> str:
    top = ", ".join(f"{reason} {count}" for reason, count in s.ignored_by_reason[:3])
    return (
        f"events {s.events_total} ({s.events_per_s:.1f}/s), open {s.open_total} "
        f"(P1 {s.open_by_priority[0]}, P2 {s.open_by_priority[1]}), rejected "
        f"{s.rejected_total}, ignored {ignored_total}{f' ({top})' if top else ''}, "
        f"duplicates folded {duplicates_total}, operators {len(s.operators)}"
    )
