"""Debian's Chromium for the browser tests (ansim web, ansim report), driven by playwright:
never a downloaded browser, and none of Chromium's own network traffic (this machine's
network is closed; its background requests would be refused many at a time)."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
