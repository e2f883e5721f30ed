"""One error type for bad input, and the stage wrapper that turns it into one clear line."""

from __future__ import annotations

import functools
import sys
from typing import Callable


class TsarenaError(Exception):
    """Bad data or bad params: reported as `error: <what> (<where>)`, exit code 1."""

    def __init__(self, what: str, where: str | None = None):
        self.what = what
        self.where = where
        super().__init__(f"{what} ({where})" if where else what)


def stage_main(fn: Callable[[], None]) -> Callable[[], None]:
    """Run a stage entry point; bad input ends it with one line on stderr, never a traceback."""

    @functools.wraps(fn)
    def wrapper() -> None:
        try:
            fn()
        except TsarenaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("error: interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
