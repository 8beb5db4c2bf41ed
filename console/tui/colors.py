"""How the console asks Textual for colours (split from :mod:`console.tui.app`)."""

from __future__ import annotations

import os
from collections.abc import Mapping


def native_ansi(colors: str, environ: Mapping[str, str] | None = None) -> bool | None:
    """Use the terminal's own 16 colours (True) on a 16-colour terminal.

    Textual otherwise maps ANSI names through its theme to RGB and back down to the
    nearest of 16, which turns red into magenta and yellow into red: P1 and P2 would
    swap colours. ``colors`` is ``[console] colors``: "16", "256" or "auto" (detect
    from TEXTUAL_COLOR_SYSTEM, then TERM/COLORTERM like Rich does)."""
    env = os.environ if environ is None else environ
    if colors == "16" or "NO_COLOR" in env:
        # NO_COLOR: with native ANSI, Textual strips colour (NoColor) and keeps bold,
        # reverse and dim; otherwise it greys colours by luminance (Monochrome), and
        # red text turns dark grey on a dark background: unreadable.
        return True
    if colors == "256":
        return None
    system = env.get("TEXTUAL_COLOR_SYSTEM", "auto")
    if system == "auto":
        from rich.console import Console

        system = Console(force_terminal=True, _environ=dict(env)).color_system or "standard"
    return True if system in ("standard", "windows") else None
