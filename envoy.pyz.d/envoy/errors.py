"""The one error type users see: what is wrong, and what to run instead."""
from __future__ import annotations

TYPE_CHECKING = False  # typing is not loaded at run time: the finisher beside every agent imports this module
if TYPE_CHECKING:
    from typing import Any

# Every exit code envoy has (README, Output): success, an envoy error, bad usage, interrupted.
EXIT_CODES = (0, 1, 2, 130)


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
