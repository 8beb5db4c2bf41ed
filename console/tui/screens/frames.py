"""Screens that paint a change within one frame period of it.

Textual paints a screen from a 60 Hz timer that it pauses when nothing is dirty
and resumes on the next change. After a frame that came late (the timer was
paused, so every frame after a quiet moment), Textual's ``Timer._run`` skips to
the slot after the next one: the next frame waits 17 to 33 ms, whatever
changed. Under a storm the screen repaints often, so a keypress usually landed
just after a frame and was shown 25-30 ms later, before any of its own work.

``FrameTimer`` keeps the rate limit (frames at least a period apart) without
that wait: resumed, it paints at once if the last frame is a period old, else
when it will be. Textual is pinned (pyproject.toml); this replaces the private
``Screen._update_timer`` and ``Timer._run``, which the pin keeps stable.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

from textual._time import get_time
from textual.screen import UPDATE_PERIOD, ModalScreen, Screen
from textual.timer import EventTargetGone, Timer

from console.tui.keys_text import translate_bindings

if TYPE_CHECKING:
    _Base = Screen[Any]
else:
    _Base = object


class FrameTimer(Timer):
    async def _run(self) -> None:
        interval, last = self._interval, -self._interval
        while True:
            await self._active.wait()  # paused until something needs painting
            wait = last + interval - get_time()
            if wait > 0:
                await asyncio.sleep(wait)
                await self._active.wait()
            last = get_time()
            try:
                await self._tick(next_timer=last, count=0)
            except EventTargetGone:
                break


class PromptFrames(_Base):
    """Mix into a Screen (first) to paint with a :class:`FrameTimer`."""

    _frame_timer: Timer | None = None

    @property
    def _update_timer(self) -> Timer:
        if self._frame_timer is None:
            timer = FrameTimer(
                self,
                UPDATE_PERIOD,
                name="screen_update",
                callback=self._on_timer_update,
                pause=True,
            )
            timer._start()
            self._timers.add(timer)
            self._frame_timer = timer
        return self._frame_timer


class ConsoleScreen(PromptFrames, Screen[Any]):
    """The console's main screen."""


T = TypeVar("T")


class ConsoleModal(PromptFrames, ModalScreen[T]):
    """The console's dialogs, their keys in the language of the moment they open."""

    def __init__(self) -> None:
        super().__init__()
        translate_bindings(self)
