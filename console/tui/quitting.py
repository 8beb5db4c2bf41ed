"""`q`: quit the console without cutting anyone else off.

A plain `ansim console` asks "Quit?"; its incidents stay with the core. The
all-in-one (``app.local_city`` set by the launcher) asks what becomes of the broker,
core and simulator it started, naming the other seats connected to them
(:mod:`console.tui.screens.quit`); the launcher acts on ``LocalCity.choice`` once the
app has exited. Either way the seat says "offline" before it goes (``Link.leave``),
so every other seat and the core drop it at once.

:func:`ask_quit` reads from the app only ``store``, ``operator`` and ``clock``, and,
when present, ``local_city`` and ``link``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from textual.app import App

from console.tui.keys_text import N_
from console.tui.presence import others_online
from console.tui.screens.confirm import ConfirmScreen
from console.tui.screens.quit import CityChoice, QuitScreen
from console.tui.state_store import StateStore
from widgets.i18n import _

if TYPE_CHECKING:
    from console.tui.link import Link  # the network stack is imported only when it is used

__all__ = ["CityChoice", "LocalCity", "ask_quit"]


@dataclass
class LocalCity:
    """What the all-in-one launcher lets its console decide at quit."""

    services: str = N_("the broker, core and simulator")  # named in the dialog, translated
    choice: CityChoice | None = None  # set by the dialog; read by the launcher after exit


class _QuitHost(Protocol):
    store: StateStore
    operator: str
    clock: Callable[[], float]


def ask_quit(app: App[Any]) -> None:
    """Ask how to quit, then say goodbye on the wire and exit the app with 0."""
    host = cast(_QuitHost, app)
    city: LocalCity | None = getattr(app, "local_city", None)
    link: Link | None = getattr(app, "link", None)

    if city is None:

        def confirmed(yes: bool | None) -> None:
            if yes:
                _leave_and_exit(app, link)

        app.push_screen(ConfirmScreen(_("Quit?"), _("Incidents stay with the core.")), confirmed)
        return

    now = host.clock()
    others = others_online(host.store.presence, host.store.summary, host.operator, now)
    twins = link.other_seats(now) if link is not None else 0

    def chosen(choice: CityChoice | None) -> None:
        if choice is not None:
            city.choice = choice
            _leave_and_exit(app, link)

    app.push_screen(QuitScreen(others, twins, city.services), chosen)


def _leave_and_exit(app: App[Any], link: Link | None) -> None:
    if link is None:
        app.exit(0)
        return

    async def leave() -> None:
        try:
            await link.leave()
        finally:
            app.exit(0)

    app.run_worker(leave(), name="quit", group="quit")
