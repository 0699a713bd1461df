"""One line of status while long work runs.

In a terminal the line is rewritten in place (carriage return); anywhere else
(a log file, CI, a notebook's captured output) each status is its own line, so
nothing is lost and nothing is garbled.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO


class StatusLine:
    """Callable that shows the latest status; `done()` ends the line."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._width = 0
        self._last = ""

    def __call__(self, text: str) -> None:
        if text == self._last:
            return
        self._last = text
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
        self._width = 0
        self._last = ""


def quiet(_text: str) -> None:
    """A progress sink that shows nothing."""


Progress = Callable[[str], None]
