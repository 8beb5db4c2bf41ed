"""`ansim journal verify|stats`: check the hash chain, count what the journal holds."""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Final

from console.config import Config
from console.journal.store import Journal, JournalError, RecordKind, VerifyResult, open_journal

HASH_PREFIX: Final = 16  # hex digits of the head hash printed (64 bits)
TOP_REASONS: Final = 10


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
    for record in journal.records(kinds={RecordKind.DEAD}):
        reasons[reason_class(record.reason)] += 1
    if reasons:
        lines.append(f"dead letters by reason ({len(reasons)} kinds):")
        for reason, n in reasons.most_common(TOP_REASONS):
            lines.append(f"  {n:>7}  {reason}")
        rest = sum(reasons.values()) - sum(n for _, n in reasons.most_common(TOP_REASONS))
        if rest:
            lines.append(f"  {rest:>7}  (other reasons)")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, cfg: Config) -> int:
    action = getattr(args, "journal_action", None) or "verify"
    try:
        with open_existing(cfg, args.journal) as journal:
            if action == "stats":
                sys.stdout.write(stats(journal))
                return 0
            result = journal.verify()
    except (NoJournal, JournalError) as exc:
        print(f"ansim journal: {exc}", file=sys.stderr)
        return 2
    print(verdict(result))
    return 0 if result.ok else 1
