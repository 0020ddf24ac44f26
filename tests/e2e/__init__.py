"""End-to-end tests: the real claude CLI against tests/e2e/fake_model.py.

A package so that its conftest is imported as e2e.conftest and does not
shadow tests/conftest.py, which the unit tests import as `conftest`.
"""
