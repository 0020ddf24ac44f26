"""The worker lifecycle engine: its record and states, locks, worktrees, queue, launch, supervisor, watcher, finish, join."""
