"""envoy: run Claude Code workers in parallel git worktrees, under a cap."""

__version__ = "0.1.0"
