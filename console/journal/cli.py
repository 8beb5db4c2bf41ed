"""`ansim journal verify|stats`: check the hash chain, count what the journal holds."""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Final

from console.config import Config
from console.journal.dead import DeadLetter
from console.journal.store import Journal, JournalError, RecordKind, VerifyResult, open_journal

HASH_PREFIX: Final = 16  # hex digits of the head hash printed (64 bits)
TOP_REASONS: Final = 10
TOP_SOURCES: Final = 10


class NoJournal(Exception):
    """The journal asked for does not exist (and is not created just to be read)."""


def open_existing(cfg: Config, path: str | None) -> Journal:
    """Open the configured journal for reading; refuse, rather than create, a missing file."""
    if cfg.journal.backend == "sqlite":
        file = Path(path or cfg.journal.path)
        if not file.is_file():
            raise NoJournal(f"no journal at {file}")
    return open_journal(cfg.journal, path)


def verdict(result: VerifyResult) -> str:
    """One line: ``journal OK: N records, head <hash prefix>`` or ``journal BAD at record N: why``."""
    if result.ok:
        return (
            f"journal OK: {result.count} records, head {result.head_hash.hex()[:HASH_PREFIX]}"
            f" (record {result.head_seq})"
        )
    return f"journal BAD at record {result.first_bad_seq}: {result.reason}"


_NUMBERS = re.compile(r"\d+(\.\d+)?")


def reason_class(reason: str) -> str:
    """A dead letter's reason with its particulars blunted, so like reasons count together."""
    head = reason.split(" - at ", 1)[0]  # msgspec appends the field path
    head = _NUMBERS.sub("N", head)
    return head[:90] + ("…" if len(head) > 90 else "")


def stats(journal: Journal) -> str:
    lines = [f"{journal.count()} records"]
    for kind in RecordKind:
        lines.append(f"  {kind.value:<9} {journal.count(kind)}")
    reasons: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    refused_bytes = 0
    for record in journal.records(kinds={RecordKind.DEAD}):
        letter = DeadLetter.from_record(record)
        reasons[reason_class(letter.reason)] += 1
        sources[letter.source] += 1
        refused_bytes += letter.size
    if reasons:
        lines.append(
            f"dead letters by reason ({len(reasons)} kinds, {refused_bytes} bytes refused):"
        )
        lines += _top(reasons, TOP_REASONS, "(other reasons)")
        lines.append(f"dead letters by source ({len(sources)} sources):")
        lines += _top(sources, TOP_SOURCES, "(other sources)")
    counted = journal.dead_counts()
    if counted:
        total = sum(c.suppressed for c in counted.values())
        lines.append(f"dead letters counted, not stored (over budget): {total}, by source:")
        ranked = sorted(counted.items(), key=lambda item: -item[1].suppressed)
        for source, c in ranked[:TOP_SOURCES]:
            lines.append(
                f"  {c.suppressed:>7}  {source} ({c.bytes} bytes, time {c.first_ts:.0f}–{c.last_ts:.0f})"
            )
        rest = sum(c.suppressed for _, c in ranked[TOP_SOURCES:])
        if rest:
            lines.append(f"  {rest:>7}  (other sources)")
    return "\n".join(lines) + "\n"


def _top(counts: Counter[str], n: int, other: str) -> list[str]:
    top = counts.most_common(n)
    lines = [f"  {count:>7}  {name}" for name, count in top]
    rest = sum(counts.values()) - sum(count for _, count in top)
    if rest:
        lines.append(f"  {rest:>7}  {other}")
    return lines


def run(args: argparse.Namespace, cfg: Config) -> int:
    action = getattr(args, "journal_action", None) or "verify"
    try:
        with open_existing(cfg, args.journal) as journal:
            if action == "stats":
                sys.stdout.write(stats(journal))
                return 0
            result = journal.verify()
            problem = journal.head.problem
    except (NoJournal, JournalError) as exc:
        print(f"ansim journal: {exc}", file=sys.stderr)
        return 2
    if result.ok and problem:
        # The chain is whole, but shorter than, or different from, what was committed.
        print(f"journal BAD: {problem}")
        return 1
    print(verdict(result))
    return 0 if result.ok else 1
