"""One module per verb, named as the user types it; each has run(args) -> exit code."""
