"""The Claude Code hooks' logic, named as users call the hooks."""

NAMES = ("validate-skill", "enforce-limits", "worker-ended")  # entry.py checks a hook's name against this without loading it
