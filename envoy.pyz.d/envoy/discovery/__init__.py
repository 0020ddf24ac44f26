"""Parallel discovery: roles, streams and their findings."""
