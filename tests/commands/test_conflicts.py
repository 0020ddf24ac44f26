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
    data = envoy("parallel", "conflicts").data
    pairs = {(p["a"], p["b"]): p for p in data["pairs"]}
    assert pairs[("a", "b")]["conflict"] is True and pairs[("a", "b")]["files"] == ["README"]
    assert pairs[("a", "c")]["conflict"] is False
    assert any("running" in key for key in pairs)  # running workers are included
    bases = {b["name"]: b for b in data["into_base"]}
    assert bases["a"]["clean"] and not bases["c"]["clean"] and bases["c"]["files"] == ["c.txt"]
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
    assert answers[-1].data["pairs"] == []
