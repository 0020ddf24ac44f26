"""The one error type users see: what is wrong, and what to run instead."""
from __future__ import annotations

TYPE_CHECKING = False  # typing is not loaded at run time: the finisher beside every agent imports this module
if TYPE_CHECKING:
    from typing import Any

# Every exit code envoy has (README, Output): success, an envoy error, bad usage,
# 3: workers waited for all succeeded but some need attention (wait, spawn/resume --wait),
# interrupted (Ctrl-C), and land/wait/merge ended by SIGHUP (129) or SIGTERM (143): 128 + the signal.
EXIT_CODES = (0, 1, 2, 3, 129, 130, 143)


class EnvoyError(Exception):
    """A failure the user can act on. `kind` is a stable snake_case word."""

    exit_code = 1

    def __init__(self, kind: str, message: str, suggestion: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.suggestion = suggestion
        self.extra = extra

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.kind, "message": self.message}
        if self.suggestion:
            error["suggestion"] = self.suggestion
        error.update(self.extra)
        return error


class UsageError(EnvoyError):
    """Bad command-line usage (unknown flag, missing argument): exit 2."""

    exit_code = 2

    def __init__(self, message: str, suggestion: str = "") -> None:
        super().__init__("invalid_usage", message, suggestion)


class Terminated(BaseException):
    """The process was asked to end: SIGTERM (a CI job cancelled, `timeout`) or SIGHUP
    (its terminal went away). Raised in the main thread, like KeyboardInterrupt, so the
    verb's cleanup runs (land stops its checks and removes its scratch worktrees); then
    answered with one document and exit 128 + the signal. A BaseException: no
    `except Exception` on the way swallows it. `data`: what the verb had done so far."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
        self.data: Any = None


def end_on_signals() -> None:
    """SIGTERM and SIGHUP raise Terminated (once: a second signal must not cut the
    cleanup the first one started short)."""
    import signal

    fired: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if not fired:
            fired.append(signum)
            raise Terminated(signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)
