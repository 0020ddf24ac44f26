"""conflicts: files that workers (and their bases) change in common."""
from __future__ import annotations

from conftest import git, spawn_done


def test_conflicts_between_workers_and_with_their_base(repo, envoy):
    spawn_done(envoy, "a", "@run echo a > README\n@commit a")
    spawn_done(envoy, "b", "@run echo b > README\n@commit b")
    spawn_done(envoy, "c", "@write c.txt c\n@commit c")
    envoy("parallel", "spawn", "--branch", "running", "--task", "@write r.txt r\n@commit r\n@sleep 60")
    git(repo, "switch", "-qc", "side")
    (repo / "c.txt").write_text("base side\n")
    git(repo, "add", "c.txt")
    git(repo, "commit", "-qm", "c on main")
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "side")
    head = git(repo, "rev-parse", "HEAD")
    from conftest import wait_until
    wait_until(lambda: git(repo, "log", "-1", "--format=%s", "running").strip() == "r")
    data = envoy("parallel", "conflicts").data
    assert [(p["a"], p["b"], p["files"]) for p in data["conflicts"]] == [("a", "b", ["README"])]
    assert data["workers"] == 4 and data["pairs"] == 6  # running workers are included
    assert data["pairs_merged"] + data["pairs_pruned"] == 6 and data["pairs_pruned"] >= 5  # only a x b shares a file
    assert [(b["name"], b["files"]) for b in data["conflicting_with_base"]] == [("c", ["c.txt"])]
    assert data["conflicting_pairs"] == 1
    assert git(repo, "rev-parse", "HEAD") == head and git(repo, "status", "--porcelain") == ""


def test_conflicts_while_cleanup_removes_the_workers(repo, envoy):
    """Branches that go while conflicts runs: it answers for the tips it saw."""
    import subprocess
    import sys

    from conftest import ENVOY_SOURCE

    names = [f"c{i}" for i in range(8)]
    for name in names:
        spawn_done(envoy, name, f"@write {name}.txt {name}\n@commit {name}")
    git(repo, "merge", "-q", "--no-edit", *names)  # merged, so a plain cleanup removes them
    cleanup = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "cleanup"], cwd=repo,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    answers = []
    while cleanup.poll() is None:
        answers.append(envoy("parallel", "conflicts"))
    cleanup.communicate()
    answers.append(envoy("parallel", "conflicts"))
    assert [a.code for a in answers] == [0] * len(answers), [a.stdout for a in answers if a.code]
    assert answers[-1].data["pairs"] == 0 and answers[-1].data["conflicts"] == []


def test_workers_without_commits_and_disjoint_ones_need_no_dry_run_merge(repo, envoy):
    for i in range(6):
        spawn_done(envoy, f"d{i}", f"@run mkdir dir{i}\n@write dir{i}/f.txt {i}\n@commit d{i}")
    for i in range(3):
        spawn_done(envoy, f"n{i}", "@result nothing to commit")
    spawn_done(envoy, "file", "@write dir0 x\n@commit file")  # a file where d0 makes a directory
    data = envoy("parallel", "conflicts").data
    assert data["workers"] == 10 and data["without_commits"] == 3
    assert data["pairs"] == 21  # of the 7 with commits
    assert data["pairs_merged"] == 1 and data["pairs_pruned"] == 20  # only file x d0 can collide
    assert data["conflicting_pairs"] == 1 and data["conflicts"][0]["a"] in ("d0", "file")
