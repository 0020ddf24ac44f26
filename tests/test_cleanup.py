"""cleanup never loses work: dirty and unmerged workers are skipped unless
--force, and forced removals keep a trash ref that restores everything."""
from __future__ import annotations

from pathlib import Path

from conftest import git, wait_finished


def spawn_done(envoy, branch: str, task: str) -> dict:
    record = envoy("parallel", "spawn", "--branch", branch, "--task", task).data
    wait_finished(envoy, record["name"])
    return record


def worktrees(repo: Path) -> list[str]:
    return [line[9:] for line in git(repo, "worktree", "list", "--porcelain").splitlines() if line.startswith("worktree ")]


def test_cleanup_removes_a_finished_worker_without_commits(repo, envoy):
    record = spawn_done(envoy, "quick/x", "@result nothing to do")
    result = envoy("parallel", "cleanup")
    assert result.code == 0
    assert [r["name"] for r in result.data["removed"]] == ["quick-x"]
    assert record["path"] not in worktrees(repo)
    assert not Path(record["path"]).exists()
    assert not git(repo, "branch", "--list", "quick/x").strip()
    assert envoy("parallel", "status").data["workers"] == []
    assert not (repo / ".git" / "envoy" / "logs" / "quick-x").exists()


def test_unmerged_worker_is_kept_until_merged(repo, envoy):
    record = spawn_done(envoy, "feat/a", "@write a.txt a\n@commit add a")
    refused = envoy("parallel", "cleanup", "--worker", "feat-a")
    assert refused.code == 1
    assert refused.error["type"] == "unmerged"
    assert "1 commit" in refused.error["message"] and "--force" in refused.error["suggestion"]
    assert Path(record["path"]).is_dir()
    batch = envoy("parallel", "cleanup")
    assert batch.code == 0 and batch.data["removed"] == []
    assert batch.data["skipped"][0]["reason"] == "unmerged"

    git(repo, "merge", "-q", "--no-edit", "feat/a")
    done = envoy("parallel", "cleanup", "--worker", "feat/a")  # by branch works too
    assert done.code == 0 and done.data["removed"][0]["name"] == "feat-a"
    assert "trash_ref" not in done.data["removed"][0]
    assert (repo / "a.txt").exists()


def test_dirty_worker_is_skipped(repo, envoy):
    record = spawn_done(envoy, "d", "@write untracked.txt u")
    refused = envoy("parallel", "cleanup", "--worker", "d")
    assert refused.error["type"] == "dirty"
    assert "untracked.txt" in refused.error["message"]
    assert (Path(record["path"]) / "untracked.txt").exists()


def test_force_keeps_everything_in_a_trash_ref_that_restores(repo, envoy):
    record = spawn_done(envoy, "feat/lost", "@write committed.txt c\n@commit committed\n@write loose.txt l")
    (Path(record["path"]) / "README").write_text("edited\n")
    (repo / ".env").write_text("SECRET\n")  # not in the worktree: .env was absent at spawn
    result = envoy("parallel", "cleanup", "--worker", "feat-lost", "--force")
    assert result.code == 0
    removed = result.data["removed"][0]
    assert removed["trash_ref"] == "refs/envoy/trash/feat-lost"
    assert removed["restore"] == f"git branch feat/lost {removed['sha']}"
    assert not Path(record["path"]).exists()
    assert not git(repo, "branch", "--list", "feat/lost").strip()

    git(repo, *removed["restore"].split()[1:])
    files = git(repo, "ls-tree", "-r", "--name-only", "feat/lost").split()
    assert {"committed.txt", "loose.txt", "README"} <= set(files)
    assert git(repo, "show", "feat/lost:README") == "edited\n"
    assert git(repo, "log", "--format=%s", "feat/lost").splitlines()[:2] == [
        "envoy: uncommitted work of worker feat-lost at cleanup", "committed"]


def test_force_twice_keeps_both_trash_refs(repo, envoy):
    first = spawn_done(envoy, "again", "@write a.txt 1\n@commit one")
    envoy("parallel", "cleanup", "--worker", "again", "--force")
    spawn_done(envoy, "again", "@write a.txt 2\n@commit two")
    second = envoy("parallel", "cleanup", "--worker", "again", "--force").data["removed"][0]
    assert second["trash_ref"] == "refs/envoy/trash/again-2"
    assert git(repo, "log", "-1", "--format=%s", "refs/envoy/trash/again").strip() == "one"
    assert git(repo, "log", "-1", "--format=%s", "refs/envoy/trash/again-2").strip() == "two"
    assert first


def test_copied_files_are_not_dirt_and_not_kept(repo, envoy):
    (repo / ".env").write_text("SECRET=1\n")
    record = spawn_done(envoy, "e", "@result ok")
    assert (Path(record["path"]) / ".env").exists()
    assert envoy("parallel", "cleanup", "--worker", "e").code == 0


def test_running_worker_is_not_touched_without_all_or_force(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60").data
    batch = envoy("parallel", "cleanup")
    assert batch.code == 0 and batch.data == {"removed": [], "skipped": []}
    one = envoy("parallel", "cleanup", "--worker", "busy")
    assert one.code == 1 and one.error["type"] == "still_running"
    assert "--force" in one.error["suggestion"]
    assert Path(record["path"]).is_dir()


def test_all_stops_running_workers_first(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60").data
    done = spawn_done(envoy, "done", "@result ok")
    result = envoy("parallel", "cleanup", "--all")
    assert result.code == 0
    assert sorted(r["name"] for r in result.data["removed"]) == ["busy", "done"]
    assert not Path(record["path"]).exists() and not Path(done["path"]).exists()
    assert envoy("parallel", "status").data["workers"] == []


def test_all_still_keeps_unmerged_work_of_a_stopped_worker(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "busy", "--task", "@write a.txt a\n@commit a\n@sleep 60").data
    from conftest import wait_until
    wait_until(lambda: git(repo, "log", "-1", "--format=%s", "busy").strip() == "a")
    result = envoy("parallel", "cleanup", "--all")
    assert result.data["skipped"][0]["reason"] == "unmerged"
    assert Path(record["path"]).is_dir()
    view = envoy("parallel", "status").data["workers"][0]
    assert view["state"] == "failed" and view["reason"] == "stopped"


def test_force_on_a_running_worker_stops_and_removes_it(repo, envoy):
    record = envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60").data
    result = envoy("parallel", "cleanup", "--worker", "busy", "--force")
    assert result.code == 0
    assert not Path(record["path"]).exists()


def test_cleanup_with_worktree_deleted_by_hand(repo, envoy):
    import shutil

    record = spawn_done(envoy, "gone", "@result ok")
    shutil.rmtree(record["path"])
    result = envoy("parallel", "cleanup", "--worker", "gone")
    assert result.code == 0
    assert record["path"] not in worktrees(repo)


def test_cleanup_nothing_to_do(envoy):
    result = envoy("parallel", "cleanup", "--text")
    assert result.code == 0 and "nothing to clean up" in result.stdout
