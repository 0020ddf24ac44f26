"""Workers (and repositories) that attack envoy through history: a repair that rewrites
its branch, a rebase whose commit is stopped by a hook or gpg rather than emptied,
commits made inside a submodule. Nothing counts as merged or landed unless the target
reaches it.

The invariants after every attack: no commit of a worker's on no ref (unless forced,
and then a trash ref names it), no file outside the repository changed, every
answer one JSON document (invariants.ask checks it)."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from conftest import git, run_envoy, wait_finished
from invariants import ask, assert_nothing_lost, snapshot


def worker(repo: Path, branch: str, task: str, env: dict[str, str] | None = None) -> str:
    name = ask(repo, "parallel", "spawn", "--branch", branch, "--from", "main", "--task", task, env=env).data()["name"]
    assert wait_finished(lambda *args: run_envoy(*args, cwd=repo, env=env), name)["state"] == "succeeded"
    return str(name)


def tip(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def reaches(repo: Path, commit: str, ref: str) -> bool:
    return subprocess.run(["git", "merge-base", "--is-ancestor", commit, ref], cwd=repo).returncode == 0


def on_some_ref(repo: Path, commit: str) -> list[str]:
    return git(repo, "for-each-ref", f"--contains={commit}", "--format=%(refname)").split()


# -- a repair that rewrites the branch ---------------------------------------------------
def test_a_repair_that_rewrites_the_branch_is_refused_and_the_old_tip_kept(repo):
    """Asked to merge main in, the repair run throws its work away (git reset --hard main)
    and commits something else: land must not land that as the worker's work, and the
    original commit must stay on a ref."""
    env = {"FAKE_CLAUDE_ON_RESUME": "@run git reset -q --hard main\n@write other.txt other\n@commit something else"}
    worker(repo, "first", "@write same.txt first\n@commit first", env)
    name = worker(repo, "second", "@write same.txt second\n@commit second", env)
    original = tip(repo, "second")
    before = snapshot(repo)
    answer = ask(repo, "parallel", "land", "--order", "fifo", "--repair", env=env)
    document = answer.document()
    assert document["status"] == "error", document
    failed = {f["name"]: f for f in document["data"]["failed"]}
    assert "rewrote" in failed[name]["error"] and "refs/envoy/trash/" in failed[name]["error"], failed
    assert [d["name"] for d in document["data"]["landed"]] == ["first"]
    assert not reaches(repo, tip(repo, "second"), "main") and not (repo / "other.txt").exists()
    assert any(r.startswith("refs/envoy/trash/") for r in on_some_ref(repo, original))
    assert_nothing_lost(repo, before)
    ask(repo, "parallel", "cleanup", "--all", "--force").data()
    assert on_some_ref(repo, original)  # the trash ref holds it after the worker is gone
    assert_nothing_lost(repo, before)


# -- a rebase stopped by something other than an empty commit ------------------------------
def failing_hook(repo: Path, tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    hook = hooks / "prepare-commit-msg"
    hook.write_text("#!/bin/sh\necho 'prepare-commit-msg: refused' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR)
    git(repo, "config", "core.hooksPath", str(hooks))


def failing_gpg(repo: Path, tmp_path: Path) -> None:
    git(repo, "config", "commit.gpgSign", "true")
    git(repo, "config", "gpg.program", "false")


@pytest.mark.parametrize("stop", [failing_hook, failing_gpg])
def test_a_rebased_commit_that_git_could_not_make_is_not_dropped_as_empty(repo, tmp_path, stop):
    name = worker(repo, "w", "@write w.txt w\n@commit w")
    worker_commit = tip(repo, "w")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    git(repo, "switch", "-qc", "elsewhere")
    main = tip(repo)
    before = snapshot(repo)
    stop(repo, tmp_path)  # after the worker's own commits: they were made
    document = ask(repo, "parallel", "merge", "--worker", name, "--rebase").document()
    assert document["status"] == "error" and document["error"]["type"] == "git_error", document
    assert tip(repo) == main and not (repo / ".git" / "envoy" / "scratch" / "rebase").exists()
    cleanup = ask(repo, "parallel", "cleanup", "--worker", name).document()
    assert cleanup["status"] == "error" and cleanup["error"]["type"] == "unmerged", cleanup
    assert on_some_ref(repo, worker_commit)
    assert_nothing_lost(repo, before)


# -- merged as a squash or rebase: the worker's own commits are not on the target ------------
@pytest.mark.parametrize("mode", ["--squash", "--rebase"])
def test_a_worker_merged_by_content_leaves_its_own_commits_on_a_trash_ref(repo, mode):
    """Its work is on main (cleanup needs no --force), but its commits are not reachable
    from main: they go to a trash ref that cleanup reports, never to no ref at all."""
    name = worker(repo, "w", "@write w.txt w\n@commit w1\n@write w2.txt w\n@commit w2")
    own = tip(repo, "w")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    assert ask(repo, "parallel", "merge", "--worker", name, mode).data()["merged"]
    before = snapshot(repo)
    removed = ask(repo, "parallel", "cleanup", "--worker", name).data()["removed"]
    assert [r["name"] for r in removed] == [name]
    assert removed[0]["trash_ref"] in on_some_ref(repo, own) and removed[0]["sha"] == own
    assert_nothing_lost(repo, before)


# -- submodules ------------------------------------------------------------------------------
FILE_PROTOCOL = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "protocol.file.allow", "GIT_CONFIG_VALUE_0": "always"}


def with_submodule(repo: Path, tmp_path: Path, init_here: bool) -> Path:
    """`lib`, a submodule of the repository; the main checkout has it checked out (its
    module store .git/modules/lib) or, `init_here` False, never did."""
    sub = tmp_path / "sub"
    sub.mkdir()
    git(sub, "init", "-q")
    git(sub, "commit", "-q", "--allow-empty", "-m", "sub start")
    subprocess.run(["git", "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub), "lib"], cwd=repo,
                   check=True, capture_output=True)
    git(repo, "commit", "-qm", "add lib")
    if not init_here:
        git(repo, "submodule", "deinit", "-q", "-f", "--", "lib")
        subprocess.run(["rm", "-rf", str(repo / ".git" / "modules")], check=True)
    return sub


SUB_WORK = ("@run git submodule update -q --init && git -C lib commit -q --allow-empty -m 'sub work' "
            "&& git commit -qam 'bump lib'")


def test_submodule_commits_a_worker_made_outlive_its_worktree(repo, tmp_path):
    sub = with_submodule(repo, tmp_path, init_here=True)
    name = worker(repo, "subw", SUB_WORK, FILE_PROTOCOL)
    made = git(repo, "rev-parse", "subw:lib").strip()
    assert subprocess.run(["git", "-C", str(sub), "cat-file", "-e", made]).returncode != 0  # never pushed
    git(repo, "switch", "-qc", "elsewhere")
    assert ask(repo, "parallel", "merge", "--worker", name).data()["merged"]  # main points at it now
    removed = ask(repo, "parallel", "cleanup", "--worker", name).data()["removed"]
    assert removed[0]["submodule_commits_kept"] == ["lib"]
    store = repo / ".git" / "modules" / "lib"
    assert git(store, "rev-parse", f"refs/envoy/kept/{made}").strip() == made
    assert git(repo, "rev-parse", "main:lib").strip() == made


def test_submodule_commits_with_nowhere_to_go_keep_the_worktree(repo, tmp_path):
    with_submodule(repo, tmp_path, init_here=False)
    name = worker(repo, "subw", SUB_WORK, FILE_PROTOCOL)
    path = Path(ask(repo, "parallel", "status").data()["workers"][0]["path"])
    git(repo, "switch", "-qc", "elsewhere")
    assert ask(repo, "parallel", "merge", "--worker", name).data()["merged"]
    for force in ([], ["--force"]):
        document = ask(repo, "parallel", "cleanup", "--worker", name, *force).document()
        assert document["status"] == "error" and document["error"]["type"] == "submodule_commits", document
        assert "git submodule update --init" in document["error"]["suggestion"]
        assert path.is_dir()


def test_a_worker_that_detaches_and_breaks_its_checkout_does_not_block_others(repo):
    """Detached worktrees are asked whether they rebase the target; one git cannot open
    (its .git file garbage) rebases nothing, and the others still merge."""
    worker(repo, "vandal", "@run git checkout -q --detach && echo garbage > .git")
    name = worker(repo, "good", "@write good.txt good\n@commit good")
    git(repo, "switch", "-qc", "elsewhere")
    assert ask(repo, "parallel", "merge", "--worker", name).data()["merged"]
    assert git(repo, "show", "main:good.txt") == "good\n"
