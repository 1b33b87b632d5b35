"""SIGINT (Ctrl-C) and SIGTERM (schedulers, containers, ``kill``) as a *request to stop* at a safe point.

While :class:`StopRequest` is installed, the first SIGINT or SIGTERM only records the signal; the
trainer finishes the optimiser step it is in, saves ``last.pt`` at that completed iteration and
raises :class:`TrainingInterrupted`. Inside :meth:`StopRequest.interruptible` (validation, which
changes no training state) the signal raises at once. A second signal while one is pending also
raises at once ("stop now"): the trainer then saves only if no step was half-done, otherwise it
leaves the previous, consistent ``last.pt`` in place. Checkpoint writes are never cut: they run
outside the interruptible regions and are atomic (temporary file + rename).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal; ``signum`` is the signal, ``saved`` the checkpoint written (or None)."""

    def __init__(self, signum: int, saved: str | None = None) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.saved = saved

    @property
    def exit_code(self) -> int:
        """128 + signal number, as a shell reports a process ended by that signal (130 SIGINT, 143 SIGTERM)."""
        return 128 + int(self.signum)


class StopRequest:
    """Records SIGINT/SIGTERM while installed; see the module docstring."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._interruptible = False
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Take over SIGINT and SIGTERM (main thread only; elsewhere signals keep their handlers)."""
        if threading.current_thread() is not threading.main_thread():
            logger.debug("not the main thread: SIGINT/SIGTERM keep their handlers")
            return
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signum is not None or self._interruptible:
            self.signum = self.signum or signum
            raise TrainingInterrupted(self.signum)
        self.signum = signum
        logger.warning("%s received: stopping after the current step and saving last.pt "
                       "(send it again to stop at once without saving a half-done step)", name)

    @contextlib.contextmanager
    def interruptible(self, enabled: bool = True) -> Iterator[None]:
        """A region a signal may cut short (it raises :class:`TrainingInterrupted` inside)."""
        if not enabled:
            yield
            return
        if self.signum is not None:
            raise TrainingInterrupted(self.signum)
        self._interruptible = True
        try:
            yield
        finally:
            self._interruptible = False

    def __enter__(self) -> "StopRequest":
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.restore()
