"""What the core asks of its journal at start and at stop, as one clear line each.

At start: open the journal and refuse it if its tail was cut or rewritten (the head
file disagrees) or its chain is broken since the last start
(:func:`console.journal.head.check_at_start`). At stop: commit what is pending, and
when that cannot be done (the disk is full), say so in one line instead of a
traceback; nothing is lost, because nothing in that batch was acknowledged.
"""

from __future__ import annotations

import logging

from console.config import Config
from console.journal.head import StartCheck, check_at_start
from console.journal.store import Journal, JournalError, open_journal

log = logging.getLogger("ansim.core")


def open_checked(cfg: Config, path_override: str | None = None) -> tuple[Journal, StartCheck]:
    """Open the configured journal and check it; JournalError (one line) if it must not be used.

    The journal is closed again before a refusal is raised.
    """
    journal = open_journal(cfg.journal, path_override)
    try:
        check = check_at_start(journal)
    except BaseException:
        # Nothing was appended: closing commits nothing and cannot fail for that reason.
        try:
            journal.close()
        except JournalError:
            pass  # the refusal is the error to report
        raise
    if check.warning:
        log.warning("journal: %s", check.warning)
    log.info("%s", check)
    return journal, check


def close_at_stop(journal: Journal) -> str:
    """Close the journal at the core's stop; "" when all is committed, else the one-line reason.

    A batch that cannot be committed now (disk full, database away) was never
    acknowledged, so the broker delivers it again to the next core: it is reported,
    not raised, so a SIGTERM on a full disk ends with that line and a non-zero exit.
    """
    pending = journal.pending()
    try:
        journal.close()
    except JournalError as exc:
        line = (
            f"journal: {pending} records not committed at stop ({exc.reason}); they were "
            "not acknowledged, so the broker delivers them again to the next start"
        )
        log.error("%s", line)
        return line
    return ""
