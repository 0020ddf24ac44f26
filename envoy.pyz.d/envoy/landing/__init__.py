"""Taking workers' work home: merges and their prediction, the speculative lane, scratch worktrees, repairs."""
