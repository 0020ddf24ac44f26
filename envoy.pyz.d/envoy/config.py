"""Settings: process environment, else `.claude/settings.local.json`, else
`.claude/settings.json` (the `env` block, where the seed says to put them),
else the default. A bad value names the setting and where it came from."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable

from envoy import files
from envoy.errors import EnvoyError

if TYPE_CHECKING:
    from pathlib import Path

# `claude --permission-mode` choices, of every supported CLI (README: Supported
# Claude Code versions). 2.1.332 added `manual`, its new name for `default`
# (which it still accepts); 2.1.197 lacks `manual` and refuses it at start, so a
# worker asked for it there fails at once (`no_result`, with the CLI's message).
PERMISSION_MODES = ("default", "acceptEdits", "auto", "bypassPermissions", "dontAsk", "plan", "manual")

SETTINGS_FILES = (".claude/settings.local.json", ".claude/settings.json")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError
    return value


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:  # also rejects NaN
        raise ValueError
    return value


def _prefix(raw: str) -> str:
    if "/" in raw or raw in (".", "..") or "\0" in raw or len(raw.encode("utf-8", "surrogateescape")) > 50:
        raise ValueError
    return raw


def _switch(raw: str) -> bool:
    if raw.lower() not in ("0", "1", "true", "false"):
        raise ValueError
    return raw.lower() in ("1", "true")


def _permission_mode(raw: str) -> str:
    if raw not in PERMISSION_MODES:
        raise ValueError
    return raw


# name -> (default, parser, what a good value looks like)
SETTINGS: dict[str, tuple[Any, Callable[[str], Any], str]] = {
    "PARALLEL_MAX_WORKERS": (3, _positive_int, "a whole number of at least 1, e.g. 3"),
    "PARALLEL_WORKER_PREFIX": ("claude-worker-", _prefix, "a directory-name prefix without '/', at most 50 bytes, e.g. claude-worker-"),
    "PARALLEL_WORKTREE_DIR": (None, str, "a directory path"),
    "PARALLEL_PERMISSION_MODE": ("acceptEdits", _permission_mode, "one of " + ", ".join(PERMISSION_MODES)),
    "PARALLEL_TIMEOUT": (7200.0, _non_negative_float, "seconds, e.g. 1800 (0 means no limit)"),
    "PARALLEL_SETUP": (None, str, "a shell command"),
    "PARALLEL_CHECK": (None, str, "a shell command, e.g. make test"),
    "PARALLEL_CHECK_TIMEOUT": (1800.0, _non_negative_float, "seconds, e.g. 600 (0 means no limit)"),
    "PARALLEL_BUDGET_USD": (None, _non_negative_float, "a dollar amount, e.g. 5"),
    "ENVOY_CLAUDE": ("claude", str, "the claude executable's name or path"),
    "PARALLEL_ON_END": (None, str, "a shell command, run once when each worker ends"),
    "PARALLEL_NOTIFY": (None, _switch, "1 (desktop notifications on) or 0 (off)"),
}


class Config:
    """Settings of the checkout at `toplevel`; settings files are read once, lazily."""

    def __init__(self, toplevel: Path, environ: dict[str, str] | None = None) -> None:
        self.toplevel = toplevel
        self.environ = os.environ if environ is None else environ
        self._files: list[tuple[str, dict[str, Any]]] | None = None

    def settings_files(self) -> list[tuple[str, dict[str, Any]]]:
        """(relative path, parsed JSON) of each settings file that exists, most specific first."""
        if self._files is None:
            self._files = []
            for rel in SETTINGS_FILES:
                path = self.toplevel / rel
                try:
                    data = files.parse_json(files.read_bytes(path))
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    raise EnvoyError("invalid_config", f"{rel} cannot be read: {files.describe(exc)}",
                                     f"make {path} a regular JSON file, or remove it") from None
                except ValueError as exc:
                    raise EnvoyError("invalid_config", f"{rel} is not valid JSON: {exc}",
                                     f"fix or remove {path}") from None
                if isinstance(data, dict):
                    self._files.append((rel, data))
        return self._files

    def raw(self, name: str) -> tuple[str | None, str]:
        """The raw value of a setting and where it came from."""
        value, source = self._raw(name)
        try:
            (value or "").encode("utf-8")
        except UnicodeEncodeError:  # bytes the environment could not decode, or a lone \udcxx in JSON
            raise EnvoyError("invalid_config", f"{name} from {source} is not UTF-8 text: {ascii(value)}",
                             f"set {name} to UTF-8 text") from None
        return value, source

    def _raw(self, name: str) -> tuple[str | None, str]:
        if name in self.environ:
            return self.environ[name], "the environment"
        for rel, data in self.settings_files():
            env = data.get("env")
            if isinstance(env, dict) and name in env:
                return str(env[name]), f"{rel} (env)"
        return None, "default"

    def get(self, name: str) -> Any:
        default, parse, expected = SETTINGS[name]
        raw, source = self.raw(name)
        if raw is None or (raw == "" and default is None):
            return default
        try:
            return parse(raw.strip())
        except ValueError:
            raise EnvoyError(
                "invalid_config",
                f"{name}={raw!r} from {source} is not valid: expected {expected}",
                f"set {name} to {expected}",
            ) from None

    def allow_rules(self) -> list[str]:
        """`permissions.allow` of the project's settings files, in order, without repeats.

        Claude Code ignores these in `-p` mode in a never-trusted directory
        (every new worktree), so envoy hands them to the worker explicitly."""
        rules: list[str] = []
        for _rel, data in reversed(self.settings_files()):
            perms = data.get("permissions")
            allow = perms.get("allow") if isinstance(perms, dict) else None
            if isinstance(allow, list):
                rules.extend(r for r in allow if isinstance(r, str) and r not in rules)
        return rules
