"""git.py: the one place git runs; its pure parts judged against git itself."""
from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.mark.parametrize("name,plain", [("feat/x", True), ("fix_1.2-rc", True), ("a/b/c", True),
                                        (".x", False), ("x.lock", False), ("a/b.lock/c", False), ("a..b", False),
                                        ("-x", False), ("x/", False), ("x.", False), ("HEAD", False), ("a b", False),
                                        ("a@{1}", False), ("ü", False), ("", False)])
def test_plain_branch_names_are_judged_without_git(name, plain):
    from envoy.git import _plain_branch_name

    assert _plain_branch_name(name) is plain


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab-_./@{}~^:?*[\\ lockHEAD", max_size=12))
def test_a_plain_branch_name_is_one_git_accepts(name):
    """The fast path never accepts what git would refuse (refusing more only costs a git call)."""
    from envoy.git import _plain_branch_name

    if _plain_branch_name(name):
        accepted = subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True).returncode == 0
        assert accepted, name
