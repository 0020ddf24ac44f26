"""A target branch checked out by the user: land and merge move it the one safe way
(landing/target.py) or refuse, changing nothing. The user's ignored and untracked
files are never written over, a commit the user dropped while a check ran does not
come back, a rebase, merge or bisect under way is never moved under, and checks run
on the whole merge result whatever the user's sparse-checkout cone.

After every attack: no file outside the repository changed, nothing reachable before
is lost (but what the user dropped on purpose), every answer one JSON document."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import git, run_envoy, wait_finished
from invariants import ask, assert_nothing_lost, snapshot

USER_ENV = "USER SECRET\n"


def worker(repo: Path, branch: str, task: str) -> str:
    name = ask(repo, "parallel", "spawn", "--branch", branch, "--from", "main", "--task", task).data()["name"]
    assert wait_finished(lambda *args: run_envoy(*args, cwd=repo), name)["state"] == "succeeded"
    return str(name)


def tip(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def move(repo: Path, verb: str, name: str, *extra: str) -> dict:
    """`merge --worker name` or `land --worker name`: the one JSON document it printed."""
    answer = ask(repo, "parallel", verb, "--worker", name, *extra)
    return answer.document()


def refusal(verb: str, document: dict) -> str:
    """What refused the move, as one text (merge: its error; land: the failed entry)."""
    assert document["status"] == "error", document
    if verb == "merge":
        return f"{document['error']['type']}: {document['error']['message']}"
    failed = document["data"]["failed"]
    assert [f["reason"] for f in failed] == ["target_refused"], failed
    return str(failed[0].get("output") or failed[0].get("error"))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside the repository a worker's symlink points at."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "keep.txt").write_text("outside\n")
    return path


def outside_unchanged(outside: Path) -> None:
    assert sorted(os.listdir(outside)) == ["keep.txt"] and (outside / "keep.txt").read_text() == "outside\n"


def ignore(repo: Path, *patterns: str) -> None:
    (repo / ".gitignore").write_text("".join(f"{p}\n" for p in patterns))
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore")


# -- the user's ignored and untracked files ------------------------------------------
@pytest.mark.parametrize("verb", ["merge", "land"])
def test_a_committed_env_does_not_replace_the_users_ignored_env(repo, verb):
    ignore(repo, ".env")
    (repo / ".env").write_text(USER_ENV)
    name = worker(repo, "env", "@write .env WORKER\n@run git add -f .env && git commit -qm 'commit .env'")
    before, main = snapshot(repo), tip(repo)
    why = refusal(verb, move(repo, verb, name))
    assert ".env" in why and ("would_overwrite" in why or verb == "land"), why
    assert (repo / ".env").read_text() == USER_ENV and tip(repo) == main
    assert git(repo, "status", "--porcelain") == ""
    assert_nothing_lost(repo, before)
    (repo / ".env").unlink()  # out of the way, as the refusal suggests: then it moves
    assert move(repo, verb, name)["status"] == "success"
    assert (repo / ".env").read_text() == "WORKER\n" and git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("verb", ["merge", "land"])
def test_a_committed_symlink_does_not_delete_the_users_ignored_directory(repo, verb, outside):
    ignore(repo, "secrets/")
    (repo / "secrets").mkdir()
    (repo / "secrets" / "api.key").write_text("key\n")
    name = worker(repo, "link", f"@run ln -s {outside} secrets && git add secrets && git commit -qm link")
    before, main = snapshot(repo), tip(repo)
    why = refusal(verb, move(repo, verb, name))
    assert "secrets" in why, why
    assert (repo / "secrets").is_dir() and not (repo / "secrets").is_symlink()
    assert (repo / "secrets" / "api.key").read_text() == "key\n" and tip(repo) == main
    outside_unchanged(outside)
    assert_nothing_lost(repo, before)


def test_an_untracked_file_where_the_worker_needs_a_directory_is_refused(repo, outside):
    """The user's untracked symlink `build` (to outside): the worker adds build/out.txt."""
    os.symlink(outside, repo / "build")
    name = worker(repo, "out", "@run mkdir -p build && echo out > build/out.txt && git add build && git commit -qm out")
    main = tip(repo)
    document = move(repo, "merge", name)
    assert document["error"]["type"] == "would_overwrite" and "build" in document["error"]["message"], document
    assert tip(repo) == main and (repo / "build").is_symlink()
    outside_unchanged(outside)


def test_a_file_the_worker_adds_where_the_user_has_none_lands_with_local_changes_kept(repo):
    """The safe move still carries the user's unrelated local changes over, as a fast-forward does."""
    (repo / "README").write_text("user's edit\n")
    (repo / "scratch.txt").write_text("untracked, elsewhere\n")
    name = worker(repo, "new", "@write new.txt new\n@commit new")
    assert move(repo, "land", name)["status"] == "success"
    assert (repo / "new.txt").read_text() == "new\n"
    assert (repo / "README").read_text() == "user's edit\n" and (repo / "scratch.txt").exists()
    assert git(repo, "status", "--porcelain").splitlines() == [" M README", "?? scratch.txt"]
    assert git(repo, "diff", "--cached") == ""


# -- the user moves the branch while the check runs -----------------------------------
def test_a_commit_the_user_drops_during_the_check_does_not_come_back(repo, tmp_path):
    name = worker(repo, "w", "@write w.txt w\n@commit w")
    git(repo, "commit", "-q", "--allow-empty", "-m", "user commit, dropped during the check")
    dropped = tip(repo)
    mark = tmp_path / "reset-done"
    check = f"if [ ! -f {mark} ]; then touch {mark}; git -C {repo} reset -q --hard HEAD~1; fi"
    document = move(repo, "land", name, "--check", check)
    assert document["status"] == "success", document
    assert subprocess.run(["git", "merge-base", "--is-ancestor", dropped, "main"], cwd=repo).returncode == 1
    assert (repo / "w.txt").read_text() == "w\n" and git(repo, "status", "--porcelain") == ""


# -- git busy in the checkout ---------------------------------------------------------
def start_interactive_rebase(repo: Path) -> None:
    """The user's `git rebase -i HEAD~2`, stopped at its first commit (`edit`): main is detached."""
    git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    subprocess.run(["git", "rebase", "-i", "HEAD~2"], cwd=repo, capture_output=True, check=True,
                   env={**os.environ, "GIT_SEQUENCE_EDITOR": "sed -i s/^pick/edit/"})
    assert git(repo, "branch", "--show-current").strip() == ""  # git shows it detached


def start_merge(repo: Path) -> None:
    git(repo, "switch", "-qc", "side")
    (repo / "README").write_text("side\n")
    git(repo, "commit", "-qam", "side")
    git(repo, "switch", "-q", "main")
    (repo / "README").write_text("main\n")
    git(repo, "commit", "-qam", "main")
    assert subprocess.run(["git", "merge", "side"], cwd=repo, capture_output=True).returncode == 1


def start_bisect(repo: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "one")
    git(repo, "commit", "-q", "--allow-empty", "-m", "two")
    git(repo, "bisect", "start", "HEAD", "HEAD~2")


@pytest.mark.parametrize("verb", ["merge", "land"])
@pytest.mark.parametrize("start, what", [(start_interactive_rebase, "rebase"), (start_merge, "merge"),
                                         (start_bisect, "bisect")])
def test_nothing_moves_under_a_rebase_merge_or_bisect_in_progress(repo, verb, start, what):
    name = worker(repo, "w", "@write w.txt w\n@commit w")
    start(repo)
    before, main, head = snapshot(repo), tip(repo), tip(repo, "HEAD")
    why = refusal(verb, move(repo, verb, name))
    assert what in why and "in progress" in why, why
    if verb == "merge":
        assert why.startswith("operation_in_progress")
    assert tip(repo) == main and tip(repo, "HEAD") == head and not (repo / "w.txt").exists()
    assert_nothing_lost(repo, before)
    if what == "rebase":  # the user's abort gives main back as it was: nothing was landed under it
        git(repo, "rebase", "--abort")
        assert tip(repo) == main and git(repo, "branch", "--show-current").strip() == "main"


def test_a_rebase_of_the_target_in_another_worktree_is_seen(repo, tmp_path):
    """main is not checked out anywhere, but a linked worktree is rebasing it."""
    name = worker(repo, "w", "@write w.txt w\n@commit w")
    git(repo, "switch", "-qc", "elsewhere")
    other = tmp_path / "other"
    git(repo, "worktree", "add", "-q", str(other), "main")
    start_interactive_rebase(other)
    main = tip(repo)
    document = move(repo, "merge", name)
    assert document["error"]["type"] == "operation_in_progress" and str(other) in document["error"]["message"]
    assert tip(repo) == main


# -- sparse checkouts -------------------------------------------------------------------
@pytest.mark.parametrize("style", ["cone", "shared-config"])
def test_the_check_sees_the_whole_merge_result_whatever_the_users_sparse_cone(repo, style):
    """`git sparse-checkout set` (per-worktree config), or the older core.sparseCheckout
    in the shared config with patterns in .git/info/sparse-checkout."""
    (repo / "a").mkdir()
    (repo / "b").mkdir()
    (repo / "a" / "x").write_text("x\n")
    (repo / "b" / "y").write_text("y\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "two dirs")
    if style == "cone":
        git(repo, "sparse-checkout", "set", "a")
    else:
        git(repo, "config", "core.sparseCheckout", "true")
        (repo / ".git" / "info" / "sparse-checkout").write_text("/a/\n")
        git(repo, "read-tree", "-mu", "HEAD")
    assert not (repo / "b").exists()
    name = worker(repo, "w", "@write a/z z\n@commit z")
    document = move(repo, "land", name, "--check", "test -f b/y && test -f a/z")
    assert document["status"] == "success", document
    assert tip(repo) == document["data"]["landed"][0]["sha"]
    assert (repo / "a" / "z").exists() and not (repo / "b").exists()  # the user's cone is as it was
    assert git(repo, "sparse-checkout", "list").split() == (["a"] if style == "cone" else ["/a/"])


def test_a_branch_that_cannot_move_after_the_files_did_gets_its_files_put_back(repo, tmp_path):
    """The files move first (as git's own fast-forward does), then the branch by
    compare-and-swap; when that fails (here a reference-transaction hook refuses it,
    as a branch moved meanwhile would), the checkout goes back to what it was."""
    from rig import make_hooks

    name = worker(repo, "w", "@write w.txt w\n@run echo worker >> README\n@commit w")
    (repo / "notes.txt").write_text("the user's untracked notes\n")
    make_hooks(repo, tmp_path).fail("ref", "refs/heads/main")
    main, status = tip(repo), git(repo, "status", "--porcelain")
    document = move(repo, "merge", name)
    assert document["status"] == "error" and "nothing was changed" in document["error"]["message"], document
    assert tip(repo) == main and git(repo, "status", "--porcelain") == status
    assert not (repo / "w.txt").exists() and (repo / "README").read_text() == "hello\n"
