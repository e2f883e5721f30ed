"""One error type for bad input, and the stage wrapper that turns it into one clear line."""

from __future__ import annotations

import contextlib
import functools
import signal
import sys
from collections.abc import Iterator
from typing import Callable


class TsarenaError(Exception):
    """Bad data or bad params: reported as `error: <what> (<where>)`, exit code 1."""

    def __init__(self, what: str, where: str | None = None):
        self.what = what
        self.where = where
        super().__init__(f"{what} ({where})" if where else what)


class StageInterrupted(BaseException):
    """SIGTERM or SIGINT during a stage.

    A BaseException of our own, not KeyboardInterrupt: Lightning swallows KeyboardInterrupt
    into sys.exit(1), but re-raises this, so cleanup (temp outputs, the MLflow run) happens.
    """

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


_deferred: list[int] | None = None  # signals held back while a store write is in flight


def _interrupt(signum: int, _frame: object) -> None:
    if _deferred is not None:
        _deferred.append(signum)
        return
    raise StageInterrupted(signum)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """SIGTERM or SIGINT arriving inside is raised on leaving, so a write to the tracking store is never cut
    in half: an SQLite transaction interrupted mid-way can leave the cleanup that follows unable to write."""
    global _deferred
    if _deferred is not None:  # nested: the outer one raises
        yield
        return
    _deferred = []
    try:
        yield
    finally:
        pending, _deferred = _deferred, None
        if pending:
            raise StageInterrupted(pending[0])


def stage_main(fn: Callable[[], None]) -> Callable[[], None]:
    """Run a stage entry point; bad input ends it with one line on stderr, never a traceback."""

    @functools.wraps(fn)
    def wrapper() -> None:
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        try:
            fn()
        except TsarenaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        except OSError as exc:  # the outside world: disk full, read-only folder, file-size limit, missing input
            where = exc.filename or "disk: free space, file-size limit or permissions"
            print(f"error: {exc.strerror or exc}; no output was written, earlier outputs are left as they were "
                  f"({where})", file=sys.stderr)
            sys.exit(1)
        except StageInterrupted as exc:
            print(f"error: interrupted by {exc}; no output was written", file=sys.stderr)
            sys.exit(128 + exc.signum)

    return wrapper
