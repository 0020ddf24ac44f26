"""diff: a worker's commits, its full diff and its uncommitted work."""
from __future__ import annotations

from pathlib import Path

from conftest import git, spawn_done


def test_diff_shows_commits_full_diff_and_uncommitted(repo, envoy):
    record = spawn_done(envoy, "d", "@write new.txt hello\n@commit add new\n@write loose.txt l")
    (Path(record["path"]) / "README").write_text("changed\n")
    data = envoy("parallel", "diff", "--worker", "d").data
    assert [c["subject"] for c in data["commits"]] == ["add new"]
    assert "+++ b/new.txt" in data["diff"] and "+hello" in data["diff"]
    assert "+changed" in data["uncommitted_diff"] and data["untracked"] == ["loose.txt"]
    stat = envoy("parallel", "diff", "--worker", "d", "--stat").data
    assert "new.txt | 1 +" in stat["diff"]
    text = envoy("parallel", "diff", "--worker", "d", "--text").stdout
    assert "commit" in text and "+hello" in text and "?? loose.txt" in text


def test_diff_while_cleanup_removes_the_workers(repo, envoy):
    """A worker removed meanwhile is not_found, never a git error, never half a diff."""
    import subprocess
    import sys

    from filelock import FileLock

    from conftest import ENVOY_SOURCE

    names = [f"d{i}" for i in range(8)]
    for name in names:
        spawn_done(envoy, name, f"@write {name}.txt {name}\n@commit {name}")
    git(repo, "merge", "-q", "--no-edit", *names)
    launch = FileLock(str(repo / ".git" / "envoy" / "locks" / "launch.lock"))
    with launch:  # cleanup removes worktrees under this mutex: it waits, having removed nothing
        cleanup = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "cleanup"], cwd=repo,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        before = [envoy("parallel", "diff", "--worker", name) for name in names]
    answers, i = [], 0
    while cleanup.poll() is None:  # racing it, as it removes them one by one
        answers.append(envoy("parallel", "diff", "--worker", names[i % len(names)]))
        i += 1
    cleanup.communicate()
    after = [envoy("parallel", "diff", "--worker", name) for name in names]
    assert all(a.code == 0 and len(a.data["commits"]) == 1 and a.data["diff"] for a in before), before
    assert all(a.code == 1 and a.error["type"] == "not_found" for a in after), after
    for answer in answers:
        if answer.code == 0:
            assert len(answer.data["commits"]) == 1 and answer.data["diff"], answer.stdout
        else:
            assert answer.error["type"] == "not_found", answer.stdout
