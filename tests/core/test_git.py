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


# -- git against real repositories ----------------------------------------------------
from pathlib import Path  # noqa: E402

from conftest import git as run_git  # noqa: E402
from envoy.errors import EXIT_CODES, EnvoyError  # noqa: E402
from envoy.git import Git, GitError  # noqa: E402


def commit(path: Path, name: str, text: str, message: str | None = None) -> str:
    (path / name).write_text(text)
    run_git(path, "add", name)
    run_git(path, "commit", "-qm", message or f"{name}: {text.strip()}")
    return run_git(path, "rev-parse", "HEAD").strip()


def sha(path: Path, ref: str) -> str:
    return run_git(path, "rev-parse", ref).strip()


def test_branch_tip_is_a_local_branch_only_never_what_else_names_a_commit(repo):
    first = sha(repo, "HEAD")
    second = commit(repo, "a", "1\n")
    run_git(repo, "tag", "v1", first)
    run_git(repo, "branch", "feat/x", first)
    g = Git(repo)
    assert g.branch_tip("main") == second and g.branch_tip("feat/x") == first
    for not_a_branch in ("v1", "main~1", "HEAD", "refs/heads/main", "-D", "", "feat", "main^{tree}", "nope"):
        assert g.branch_tip(not_a_branch) is None, not_a_branch
    assert g.branch_exists("main") and not g.branch_exists("v1")


def test_branch_tip_of_a_branch_named_like_a_tag_is_the_branchs(repo):
    first = sha(repo, "HEAD")
    second = commit(repo, "a", "1\n")
    run_git(repo, "tag", "same", second)
    run_git(repo, "branch", "same", first)
    assert Git(repo).branch_tip("same") == first


def test_delete_branch_at_deletes_only_while_the_branch_is_where_it_was_seen(repo):
    g = Git(repo)
    base = sha(repo, "HEAD")
    run_git(repo, "branch", "w")
    run_git(repo, "branch", "moved")
    run_git(repo, "switch", "-q", "moved")
    moved = commit(repo, "b", "work\n")
    run_git(repo, "switch", "-q", "main")
    assert g.delete_branch_at("moved", base) is False  # it moved on: nothing changed
    assert g.branch_tip("moved") == moved
    assert g.delete_branch_at("w", base) is True and not g.branch_exists("w")
    assert g.delete_branch_at("w", base) is False  # already gone
    assert g.branch_tip("main") == base


def test_keep_in_trash_never_overwrites_a_kept_ref(repo):
    g = Git(repo)
    first = sha(repo, "HEAD")
    second = commit(repo, "a", "1\n")
    third = commit(repo, "a", "2\n")
    assert g.keep_in_trash("w", first) == "refs/envoy/trash/w"
    assert g.keep_in_trash("w", second) == "refs/envoy/trash/w-2"
    assert g.keep_in_trash("w", third) == "refs/envoy/trash/w-3"
    assert [sha(repo, f"refs/envoy/trash/{n}") for n in ("w", "w-2", "w-3")] == [first, second, third]
    assert g.keep_in_trash("w-2", first) == "refs/envoy/trash/w-2-2"  # w-2 is taken, whoever took it


def test_keep_in_trash_of_a_missing_commit_is_a_git_error_not_a_new_name(repo):
    with pytest.raises(GitError):
        Git(repo).keep_in_trash("w", "1" * 40)
    assert run_git(repo, "for-each-ref", "refs/envoy/") == ""


def diverged(repo: Path, ours: str, theirs: str, name: str = "f") -> tuple[str, str]:
    run_git(repo, "branch", "other")
    a = commit(repo, name, ours)
    run_git(repo, "switch", "-q", "other")
    b = commit(repo, name, theirs)
    run_git(repo, "switch", "-q", "main")
    return a, b


def test_merge_tree_names_the_conflicted_files_and_touches_nothing(repo):
    a, b = diverged(repo, "ours\n", "theirs\n")
    (repo / "g").write_text("x\n")
    run_git(repo, "add", "g")
    run_git(repo, "commit", "-qm", "g on main")
    tree, conflicts = Git(repo).merge_tree("main", "other")
    assert tree is None and conflicts == ["f"]
    assert run_git(repo, "status", "--porcelain") == "" and (repo / "f").read_text() == "ours\n"


def test_merge_tree_of_a_clean_merge_is_the_tree_git_merge_makes(repo):
    a, b = diverged(repo, "ours\n", "theirs\n")
    run_git(repo, "switch", "-q", "other")
    commit(repo, "f", "ours\n")  # now only other's other files differ
    commit(repo, "h", "new\n")
    run_git(repo, "switch", "-q", "main")
    tree, conflicts = Git(repo).merge_tree("main", "other")
    run_git(repo, "merge", "-q", "--no-edit", "other")
    assert conflicts == [] and tree == sha(repo, "HEAD^{tree}")


def test_merge_tree_of_a_non_commit_is_a_git_error(repo):
    with pytest.raises(GitError):
        Git(repo).merge_tree("main", "no-such-ref")


def test_cherry_pick_onto_replays_the_commits_onto_lacks(repo, tmp_path):
    g = Git(repo)
    run_git(repo, "branch", "w")
    onto = commit(repo, "main.txt", "main\n")
    run_git(repo, "switch", "-q", "w")
    commit(repo, "one", "1\n")
    tip = commit(repo, "two", "2\n")
    run_git(repo, "switch", "-q", "main")
    before = g.worktrees()
    new, conflicts = g.cherry_pick_onto(onto, tip, tmp_path / "pick")
    assert conflicts == [] and new not in (onto, tip)
    assert run_git(repo, "rev-list", "--count", f"{onto}..{new}").strip() == "2"
    assert run_git(repo, "show", f"{new}:two") == "2\n" and run_git(repo, "show", f"{new}:main.txt") == "main\n"
    assert g.worktrees() == before and not (tmp_path / "pick").exists()
    assert sha(repo, "main") == onto and sha(repo, "w") == tip  # no branch moved


def test_cherry_pick_onto_a_conflict_names_the_files_and_leaves_nothing_behind(repo, tmp_path):
    g = Git(repo)
    onto, tip = diverged(repo, "ours\n", "theirs\n")
    before = g.worktrees()
    assert g.cherry_pick_onto(onto, tip, tmp_path / "pick") == (None, ["f"])
    assert g.worktrees() == before and not (tmp_path / "pick").exists()
    assert sha(repo, "main") == onto and run_git(repo, "status", "--porcelain") == ""


def test_cherry_pick_onto_skips_commits_whose_change_onto_already_has(repo, tmp_path):
    g = Git(repo)
    run_git(repo, "branch", "w")
    run_git(repo, "switch", "-q", "w")
    commit(repo, "a", "1\n")
    commit(repo, "b", "2\n")
    tip = commit(repo, "c", "3\n")
    run_git(repo, "switch", "-q", "main")
    run_git(repo, "merge", "-q", "--squash", f"{tip}~1")  # a and b landed as one squash
    run_git(repo, "commit", "-qm", "squash of a and b")
    onto = sha(repo, "HEAD")
    new, conflicts = g.cherry_pick_onto(onto, tip, tmp_path / "pick")
    assert conflicts == []
    assert run_git(repo, "log", "--format=%s", f"{onto}..{new}").splitlines() == ["c: 3"]


def test_cherry_pick_onto_with_every_commit_already_applied_is_onto_itself(repo, tmp_path):
    """Every commit of the tip is already on onto, as another commit (cherry-picked by
    the user): nothing is left to replay, and the answer is onto, not a git error."""
    g = Git(repo)
    run_git(repo, "branch", "w")
    run_git(repo, "switch", "-q", "w")
    tip = commit(repo, "a", "1\n")
    run_git(repo, "switch", "-q", "main")
    run_git(repo, "cherry-pick", "-x", tip)  # -x: the same patch in another commit
    onto = commit(repo, "a", "2\n")  # and main moved on, so a merge of the two conflicts
    assert onto != tip and not g.is_ancestor(tip, onto)
    assert g.cherry_pick_onto(onto, tip, tmp_path / "pick") == (onto, [])
    assert not (tmp_path / "pick").exists()


def test_dirty_paths_lists_modified_staged_untracked_and_renamed_paths(repo):
    commit(repo, "old name.txt", "x\n")
    commit(repo, "kept", "k\n")
    (repo / ".gitignore").write_text("*.log\n")
    run_git(repo, "add", ".gitignore")
    run_git(repo, "commit", "-qm", "ignore")
    run_git(repo, "mv", "old name.txt", "new näme.txt")
    (repo / "README").write_text("changed\n")
    (repo / "staged").write_text("s\n")
    run_git(repo, "add", "staged")
    (repo / "deep" / "er").mkdir(parents=True)
    (repo / "deep" / "er" / "file").write_text("u\n")
    (repo / "noise.log").write_text("ignored\n")
    (repo / "kept").unlink()
    assert sorted(Git(repo).dirty_paths(repo)) == ["README", "deep/er/file", "kept", "new näme.txt", "staged"]


def test_dirty_paths_of_a_clean_worktree_is_empty(repo):
    assert Git(repo).dirty_paths(repo) == []


def test_a_git_error_carries_gits_message_and_envoy_exits_1_not_gits_code(repo):
    with pytest.raises(GitError) as caught:
        Git(repo).run("rev-parse", "--verify", "no-such-ref")
    error = caught.value
    assert error.git_exit_code == 128 and error.exit_code == 1 and error.exit_code in EXIT_CODES
    assert error.kind == "git_error" and "fatal: Needed a single revision" in error.message
    assert "exit 128" in error.message and "Needed a single revision" in error.stderr
    assert error.as_dict()["type"] == "git_error" and error.as_dict()["suggestion"]


def test_a_directory_outside_any_repository_is_not_a_repo(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(EnvoyError) as caught:
        Git(tmp_path / "plain").toplevel()
    assert caught.value.kind == "not_a_repo" and not isinstance(caught.value, GitError)


def test_git_runs_in_its_directory_whatever_git_variables_the_caller_exported(repo, tmp_path, monkeypatch):
    head = sha(repo, "HEAD")
    other = tmp_path / "other"
    other.mkdir()
    run_git(other, "init", "-q")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_INDEX_FILE", str(other / ".git" / "index"))
    assert Git(repo).toplevel() == repo and Git(repo).branch_tip("main") == head


def test_commit_files_many_makes_the_commits_commit_files_makes_in_three_processes(repo, tmp_path):
    g = Git(repo)
    head = run_git(repo, "rev-parse", "HEAD").strip()
    other = g.commit_files({"x": b"x\n"}, [], "other")
    wanted = [({"task": b"do it\r\n", "spec.json": b'{"a": 1}', "transcript.jsonl": b"\x00\xff"}, [head], "one"),
              ({"task": b"two"}, [head, other], "envoy: run 2 of worker w"),
              ({"b": b"", "a": b"a"}, [], "no parent")]
    counted = tmp_path / "bin"
    counted.mkdir()
    log = tmp_path / "calls"
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True).stdout.strip()
    (counted / "git").write_text(f'#!/bin/sh\necho x >> {log}\nexec {real} "$@"\n')
    (counted / "git").chmod(0o755)
    import os

    path = os.environ["PATH"]
    os.environ["PATH"] = f"{counted}:{path}"
    try:
        made = g.commit_files_many(wanted)
    finally:
        os.environ["PATH"] = path
    assert len(log.read_text().splitlines()) == 3
    assert g.commit_files_many([]) == []
    for sha, (files, parents, message) in zip(made, wanted):
        alike = g.commit_files(files, parents, message)
        assert run_git(repo, "rev-parse", f"{sha}^{{tree}}") == run_git(repo, "rev-parse", f"{alike}^{{tree}}")
        assert run_git(repo, "log", "-1", "--format=%P%n%an <%ae>%n%cn <%ce>%n%B", sha) == \
            run_git(repo, "log", "-1", "--format=%P%n%an <%ae>%n%cn <%ce>%n%B", alike)
        for name, data in files.items():
            assert subprocess.run(["git", "cat-file", "blob", f"{sha}:{name}"], cwd=repo, capture_output=True,
                                  check=True).stdout == data
    assert run_git(repo, "fsck", "--strict", "--no-dangling") == ""
