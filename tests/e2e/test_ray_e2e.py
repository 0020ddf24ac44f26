"""Workers on a real Ray cluster (two nodes on this machine, in namespaces of their
own: see ray_cluster.py), git as the data plane: a bare repository as the shared
remote. envoy runs from the built pyz with `python -I -S`, where `ray` cannot be
imported: it talks to the cluster over plain HTTP. The node's `claude` is a shim
naming the agent of the moment (tests/fake_claude.py, or a pinned real CLI
against the fake model server, which runs in the namespace too)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
from fake_model import FakeModel, bash, delay, text, tool, write
from ray_cluster import TOKEN, RayCluster

from conftest import FAKE_CLAUDE, Result, git, run_envoy, wait_until, watchers  # tests/conftest.py
from e2e.conftest import claude_environment  # tests/e2e/conftest.py (plain `conftest` is tests/'s)

pytestmark = pytest.mark.timeout(900)


class Cluster:
    """The session's cluster, its fake model server, and the node's agent shim."""

    def __init__(self, ray: RayCluster, model: FakeModel, agent_file: Path, home: Path) -> None:
        self.ray, self.model, self.agent_file, self.home = ray, model, agent_file, home

    def use_agent(self, path: str | Path) -> None:
        self.agent_file.write_text(str(path))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    work = tmp_path_factory.mktemp("ray")
    home = work / "node-home"
    ray = RayCluster(work, {})
    try:
        ray.enter()  # first: the model server then listens on the namespace's loopback
        with FakeModel() as model:
            agent_file = work / "agent"
            agent_file.write_text(str(FAKE_CLAUDE))
            shim = work / "claude"
            shim.write_text(f'#!/bin/sh\nexec "$(cat {agent_file})" "$@"\n')
            shim.chmod(0o755)
            # The node's environment is how the cluster hands jobs what they need (the
            # model's address and key): envoy sends none of it.
            node_env = {k: v for k, v in os.environ.items()
                        if not k.startswith(("ENVOY_", "PARALLEL_", "GIT_", "CLAUDE", "ANTHROPIC_", "VIRTUAL_ENV"))}
            node_env.update(claude_environment(model.url, home))
            node_env.update({"ENVOY_CLAUDE": str(shim), "GIT_CONFIG_NOSYSTEM": "1",
                             "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"), "ENVOY_NODE_DIR": str(work / "node")})
            ray.node_env = node_env
            ray.start_ray()
            yield Cluster(ray, model, agent_file, home)
    finally:
        ray.stop()


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    return bare


@pytest.fixture
def repo(tmp_path: Path, remote: Path) -> Iterator[Path]:  # overrides tests/conftest.py's: with an origin
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    (path / "README").write_text("hello\n")
    (path / "shared.txt").write_text("one\n")
    git(path, "add", ".")
    git(path, "commit", "-qm", "init")
    git(path, "remote", "add", "origin", str(remote))
    yield path


@pytest.fixture
def renvoy(pyz: Path, repo: Path, cluster: Cluster) -> Any:
    """envoy from the built pyz, in an interpreter that cannot import ray (-I -S)."""
    def call(*args: str, env: dict[str, str] | None = None, **kw: Any) -> Result:
        return run_envoy(*args, cwd=repo, env={"PARALLEL_RAY_TOKEN": TOKEN, **(env or {})},
                         command=[sys.executable, "-I", "-S", str(pyz)], **kw)
    return call


def spawn(renvoy: Any, cluster: Cluster, branch: str, task: str, *extra: str) -> dict[str, Any]:
    result = renvoy("parallel", "spawn", "--on", cluster.ray.address, "--branch", branch, "--task", task, *extra)
    assert result.code == 0, result.stdout + result.stderr
    return result.data  # type: ignore[no-any-return]


def status_of(renvoy: Any, name: str) -> dict[str, Any]:
    return renvoy("parallel", "status", "--worker", name).data["workers"][0]  # type: ignore[no-any-return]


def test_envoy_runs_where_ray_cannot_be_imported() -> None:
    probe = subprocess.run([sys.executable, "-I", "-S", "-c", "import ray"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'ray'" in probe.stderr


def test_a_batch_is_submitted_from_one_process_and_its_work_comes_back(renvoy: Any, cluster: Cluster,
                                                                        repo: Path, remote: Path) -> None:
    lines = "".join(json.dumps({"branch": f"batch/b{i}", "task": f"@write b{i}.txt bee{i}\n@commit b{i}\n"
                                f"@result b{i} done"}) + "\n" for i in range(3))
    done = renvoy("parallel", "spawn", "--batch", "-", "--on", cluster.ray.address, input=lines)
    assert done.code == 0, done.stdout + done.stderr
    assert [r["name"] for r in done.data["workers"]] == ["batch-b0", "batch-b1", "batch-b2"]
    assert all(r["state"] == "queued" and r["job_id"] for r in done.data["workers"]), done.data
    waited = renvoy("parallel", "wait", *(a for i in range(3) for a in ("--worker", f"batch-b{i}")), timeout=300)
    assert waited.code == 0, waited.stdout + waited.stderr
    rows = {w["name"]: w for w in renvoy("parallel", "status").data["workers"]}
    for i in range(3):
        row = rows[f"batch-b{i}"]
        assert row["state"] == "succeeded" and row["executor"] == "ray" and row["node"], row
        assert git(repo, "show", f"batch/b{i}:b{i}.txt").strip() == f"bee{i}"  # its commit, fetched back
        assert git(repo, "log", "--format=%s", "-1", f"batch/b{i}").strip() == f"b{i}"


def test_a_fleet_with_a_conflict_waits_reports_and_lands(renvoy: Any, cluster: Cluster, repo: Path,
                                                          remote: Path) -> None:
    git(repo, "switch", "-qc", "private")  # a branch of the user's that must never reach the remote
    git(repo, "switch", "-q", "main")
    spawn(renvoy, cluster, "feat/a", "@write a.txt alpha\n@commit add a\n@result a done")
    spawn(renvoy, cluster, "feat/b", "@write shared.txt bee\n@commit b edits shared\n@result b done")
    spawn(renvoy, cluster, "feat/c", "@sleep 1\n@write shared.txt sea\n@commit c edits shared\n@result c done")
    waited = renvoy("parallel", "wait", timeout=300)
    assert waited.code == 0, waited.stdout + waited.stderr
    rows = {w["name"]: w for w in renvoy("parallel", "status").data["workers"]}
    assert {r["state"] for r in rows.values()} == {"succeeded"}
    assert all(r["executor"] == "ray" and r["node"] for r in rows.values()), rows
    results = {r["name"]: r for r in renvoy("parallel", "results").data["results"]}
    assert results["feat-a"]["result"] == "a done"
    assert [c["subject"] for c in results["feat-b"]["commits"]] == ["b edits shared"]
    assert git(repo, "show", "feat/c:shared.txt").strip() == "sea"  # fetched back as a local branch
    # Only envoy's refs reached the remote: no branch of the user's.
    pushed = git(remote, "for-each-ref", "--format=%(refname)").split()
    assert pushed and all(r.startswith("refs/envoy/workers/") for r in pushed), pushed
    conflicts = renvoy("parallel", "conflicts").data
    assert "shared.txt" in json.dumps(conflicts)
    landed = renvoy("parallel", "land", "--order", "fifo", "--check", "test -f README", timeout=300)
    assert landed.code == 1, landed.stdout + landed.stderr
    document = json.loads(landed.stdout)
    data = document.get("data") or document.get("error") or {}
    assert [d["name"] for d in data.get("landed", [])] == ["feat-a", "feat-b"], document
    assert git(repo, "show", "main:a.txt").strip() == "alpha"


def test_real_claude_works_and_resumes_on_the_cluster(renvoy: Any, cluster: Cluster, claude_bin: str,
                                                      repo: Path) -> None:
    cluster.use_agent(claude_bin)
    name = f"remote-real-{abs(hash(claude_bin))}"  # one script per CLI: the model server is the module's
    try:
        marker = cluster.model.script(name, [
            write("notes.md", "first\n"), bash("git add notes.md && git commit -qm 'notes'"), text("first run done"),
            bash("git log --format=%s -1"), text("second run saw its history")])
        record = spawn(renvoy, cluster, "feat/real", f"{marker} write notes")
        done = renvoy("parallel", "wait", "--worker", record["name"], timeout=300)
        assert done.code == 0, done.stdout + done.stderr
        assert git(repo, "show", "feat/real:notes.md") == "first\n"
        resumed = renvoy("parallel", "resume", "--worker", record["name"], "--task", f"{marker} go on", "--wait",
                         timeout=300)
        assert resumed.code == 0, resumed.stdout + resumed.stderr
        assert resumed.data["runs"] == 2 and resumed.data["result"] == "second run saw its history"
        sessions = {r.session_id for r in cluster.model.requests_for(name)}
        assert sessions == {record["session_id"]}  # one session, continued on the cluster
        second = cluster.model.requests_for(name)[-1]
        assert "first run done" in json.dumps(second.body)  # the transcript came back with the work
    finally:
        cluster.use_agent(FAKE_CLAUDE)


def test_resume_on_the_cluster_finds_the_uncommitted_work_of_the_last_run(renvoy: Any, cluster: Cluster,
                                                                         claude_bin: str, repo: Path,
                                                                         remote: Path) -> None:
    from envoy.executors.ray_api import RayJobs

    git(remote, "config", "uploadpack.allowFilter", "true")  # the node's cache is a partial clone
    cluster.use_agent(claude_bin)
    name = f"remote-left-{abs(hash(claude_bin))}"
    try:
        marker = cluster.model.script(name, [
            write("left.txt", "left behind\n"), text("wrote it, did not commit"),
            bash("git status --porcelain && git add left.txt && git commit -qm 'commit what was left'"),
            text("committed it")])
        record = spawn(renvoy, cluster, "feat/left", f"{marker} write left.txt")
        assert renvoy("parallel", "wait", "--worker", record["name"], timeout=300).code == 0
        assert status_of(renvoy, record["name"])["wip_ref"] == f"refs/envoy/wip/{record['name']}"
        api = RayJobs(cluster.ray.url, TOKEN)
        first_log = api.logs(status_of(renvoy, record["name"])["job_id"])
        assert ": action: Write: " in first_log and "left.txt" in first_log, first_log[-3000:]
        assert "fetched in full" not in first_log
        resumed = renvoy("parallel", "resume", "--worker", record["name"], "--task", f"{marker} commit it",
                         "--wait", timeout=300)
        assert resumed.code == 0, resumed.stdout + resumed.stderr
        assert resumed.data["result"] == "committed it"
        assert git(repo, "log", "-1", "--format=%s", "feat/left").strip() == "commit what was left"
        assert git(repo, "show", "feat/left:left.txt") == "left behind\n"
        said = cluster.model.tool_results(name)[-1].content
        assert "?? left.txt" in said, said  # the agent found it uncommitted, untracked as it left it
        assert "restored the last run's uncommitted work" in api.logs(status_of(renvoy, record["name"])["job_id"])
    finally:
        cluster.use_agent(FAKE_CLAUDE)


def test_land_repairs_a_remote_worker_in_its_session_on_the_cluster(renvoy: Any, cluster: Cluster,
                                                                      claude_bin: str, repo: Path) -> None:
    cluster.use_agent(claude_bin)
    name = f"remote-repair-{abs(hash(claude_bin))}"
    try:
        marker = cluster.model.script(name, [
            tool("Read", {"file_path": "shared.txt"}), write("shared.txt", "worker\n"),
            bash("git add shared.txt && git commit -qm 'worker edit'"), text("edited"),
            bash("git merge main"), tool("Read", {"file_path": "shared.txt"}), write("shared.txt", "main edit\nworker\n"),
            bash("git add shared.txt && git commit -qm 'merge main, keep both'"), text("repaired")])
        record = spawn(renvoy, cluster, "feat/fixme", f"{marker} edit shared.txt")
        (repo / "shared.txt").write_text("main edit\n")  # meanwhile main moves: a conflict
        git(repo, "commit", "-qam", "main edit")
        assert renvoy("parallel", "wait", timeout=300).code == 0
        landed = renvoy("parallel", "land", "--repair", timeout=600)
        assert landed.code == 0, landed.stdout + landed.stderr
        assert [(d["name"], d["repairs"]) for d in landed.data["landed"]] == [(record["name"], 1)], (
            landed.stdout, renvoy("parallel", "results").stdout[-3000:])
        assert git(repo, "show", "main:shared.txt") == "main edit\nworker\n"
        assert {r.session_id for r in cluster.model.requests_for(name)} == {record["session_id"]}
    finally:
        cluster.use_agent(FAKE_CLAUDE)


def test_a_running_remote_workers_last_action_is_shown_live_then_it_succeeds(renvoy: Any, cluster: Cluster,
                                                                              claude_bin: str, repo: Path) -> None:
    cluster.use_agent(claude_bin)
    name = f"remote-live-{abs(hash(claude_bin))}"
    thinking = threading.Event()  # the model holds its next answer until the test has seen the action
    try:
        marker = cluster.model.script(name, [
            bash("echo live-step > live.txt && git add live.txt && git commit -qm 'live step'"),
            delay(240, text("live done"), until=thinking)])
        record = spawn(renvoy, cluster, "feat/live", f"{marker} take one step, then think")

        def shown() -> dict[str, Any] | None:  # status is all that is called: the watcher reads the log
            row = status_of(renvoy, record["name"])
            return row if row.get("last_action") else None

        row = wait_until(shown, timeout=240, interval=2)
        assert row["state"] == "running" and row["last_action_at"], row
        assert row["last_action"].startswith("Bash: echo live-step > live.txt"), row
        results = renvoy("parallel", "results", "--worker", record["name"])
        assert results.code == 0, results.stdout + results.stderr
        actions = results.data["results"][0]["actions"]
        assert any(" Bash: echo live-step > live.txt" in line for line in actions), actions
        assert status_of(renvoy, record["name"])["state"] == "running"  # all of it seen while it ran
        from envoy.executors.ray_api import RayJobs

        api = RayJobs(cluster.ray.url, TOKEN)  # the watcher's cut read of Ray's own answer: whole lines of its end
        tail, whole = api.logs_tail(row["job_id"], keep=300), api.logs(row["job_id"])
        assert tail and len(tail) <= 300 and tail in whole and ("\n" + tail) in whole, (tail, whole[-1000:])
        thinking.set()
        done = renvoy("parallel", "wait", "--worker", record["name"], timeout=300)
        assert done.code == 0, done.stdout + done.stderr
        assert status_of(renvoy, record["name"])["state"] == "succeeded"
        assert git(repo, "show", "feat/live:live.txt") == "live-step\n"
    finally:
        thinking.set()
        cluster.use_agent(FAKE_CLAUDE)


def test_a_job_stopped_from_rays_cli_is_recorded_so(renvoy: Any, cluster: Cluster, repo: Path,
                                                    tmp_path: Path) -> None:
    record = spawn(renvoy, cluster, "feat/stopme", f"@write s.txt s\n@commit s\n@wait-for {tmp_path}/never")
    wait_until(lambda: status_of(renvoy, record["name"])["state"] == "running", timeout=120, interval=1)
    wait_until(lambda: "refs/envoy/workers/feat-stopme/head" in git(repo, "ls-remote", "origin"), 60, 0.5)
    env = {**os.environ, "RAY_ADDRESS": cluster.ray.url, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN}
    stopped = cluster.ray.run([str(cluster.ray.ray), "job", "stop", record["job_id"]], env)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    view = wait_until(lambda: (lambda v: v if v["state"] == "stopped" else None)(status_of(renvoy, record["name"])),
                      timeout=120, interval=1)
    assert view["reason"] == "stopped" and "outside envoy" in view["error"], view
    assert git(repo, "show", "feat/stopme:s.txt").strip() == "s"  # its commit came back


def test_envoy_stop_ends_a_remote_workers_job_and_keeps_its_work(renvoy: Any, cluster: Cluster, repo: Path,
                                                                 tmp_path: Path) -> None:
    record = spawn(renvoy, cluster, "feat/halt", f"@write h.txt h\n@commit h\n@wait-for {tmp_path}/never")
    wait_until(lambda: status_of(renvoy, record["name"])["state"] == "running", timeout=120, interval=1)
    wait_until(lambda: "refs/envoy/workers/feat-halt/head" in git(repo, "ls-remote", "origin"), 60, 0.5)
    stopped = renvoy("parallel", "stop", "--worker", record["name"], timeout=200)
    assert stopped.code == 0 and stopped.data["state"] == "stopped", stopped.stdout + stopped.stderr
    assert "by envoy" in stopped.data["error"]
    assert git(repo, "show", "feat/halt:h.txt").strip() == "h"  # its commit came back
    again = renvoy("parallel", "stop", "--worker", record["name"])
    assert again.code == 1 and again.error["type"] == "already_stopped"


def test_cleanup_stops_a_running_remote_worker_and_keeps_its_pushed_work(renvoy: Any, cluster: Cluster,
                                                                         repo: Path, remote: Path,
                                                                         tmp_path: Path) -> None:
    record = spawn(renvoy, cluster, "feat/long", f"@write l.txt l\n@commit l\n@wait-for {tmp_path}/never")
    wait_until(lambda: "refs/envoy/workers/feat-long/head" in git(remote, "for-each-ref"), 120, 0.5)
    refused = renvoy("parallel", "cleanup", "--worker", record["name"])
    assert refused.code == 1 and refused.error["type"] == "still_running"
    gone = renvoy("parallel", "cleanup", "--worker", record["name"], "--force", timeout=200)
    assert gone.code == 0, gone.stdout + gone.stderr
    assert gone.data["removed"][0]["trash_ref"]  # unmerged: kept, as for a local worker
    assert "refs/envoy/workers/feat-long/head" in git(remote, "for-each-ref")  # the remote's copy stays


def test_the_cluster_stopped_under_a_running_worker(renvoy: Any, cluster: Cluster, repo: Path,
                                                    tmp_path: Path) -> None:
    record = spawn(renvoy, cluster, "feat/orphan", f"@wait-for {tmp_path}/never")
    wait_until(lambda: status_of(renvoy, record["name"])["state"] == "running", timeout=120, interval=1)
    local = renvoy("parallel", "spawn", "--branch", "feat/here", "--task", "@result here",
                   env={"ENVOY_CLAUDE": str(FAKE_CLAUDE)})
    assert local.code == 0, local.stdout + local.stderr
    down = cluster.ray.run([str(cluster.ray.ray), "stop", "--force"], {**os.environ})
    assert down.returncode == 0, down.stdout + down.stderr
    try:
        rows = {w["name"]: w for w in renvoy("parallel", "status").data["workers"]}
        problem = rows["feat-orphan"]["cluster_error"]
        assert problem["type"] == "cluster_unreachable" and problem["address"] == cluster.ray.url, problem
        waited = renvoy("parallel", "wait", "--worker", "feat-here", timeout=60)
        assert waited.code == 0 and waited.data["workers"][0]["state"] == "succeeded"  # local: unaffected
    finally:
        cluster.ray.start_ray()
    # The restarted cluster does not know the job: the worker ends failed, saying so.
    view = wait_until(lambda: (lambda v: v if v["state"] == "failed" else None)(status_of(renvoy, record["name"])),
                      timeout=60, interval=1)
    assert view["reason"] == "job_lost" and cluster.ray.url in view["error"], view


def test_after_is_submitted_by_the_watcher_with_no_verb_called(renvoy: Any, cluster: Cluster, repo: Path) -> None:
    from envoy.executors.ray_api import RayJobs

    spawn(renvoy, cluster, "a", "@write a.txt alpha\n@commit add a\n@result a done")
    b = spawn(renvoy, cluster, "b", "@write b.txt bee\n@commit add b\n@result b done", "--after", "a")
    assert "job_id" not in b  # waits here, unsubmitted, until a succeeded
    api = RayJobs(cluster.ray.url, TOKEN)
    # No envoy verb meanwhile: only the cluster's own API is asked.
    wait_until(lambda: [j for j in api.jobs() if (j.get("metadata") or {}).get("envoy_worker") == "b"],
               timeout=240, interval=1)
    waited = renvoy("parallel", "wait", timeout=300)
    assert waited.code == 0, waited.stdout + waited.stderr
    rows = {w["name"]: w for w in renvoy("parallel", "status").data["workers"]}
    assert rows["a"]["state"] == rows["b"]["state"] == "succeeded", rows
    assert git(repo, "show", "b:a.txt").strip() == "alpha"  # b started from a's work

    wait_until(lambda: not watchers(repo), timeout=60)  # nothing remote active: the watcher is gone


def job_of(cluster: Cluster, job_id: str, what: str = "") -> Any:
    """The cluster's own word on a job (GET /api/jobs/{id}[/logs]), asked directly."""
    import urllib.request

    request = urllib.request.Request(f"{cluster.ray.url}/api/jobs/{job_id}{what}",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def test_pending_workers_are_taken_back_at_once_and_run_nothing_when_a_slot_frees(
        renvoy: Any, cluster: Cluster, repo: Path, remote: Path, tmp_path: Path) -> None:
    # Fill the cluster's two envoy_worker slots, so the next two jobs stay PENDING there.
    release = tmp_path / "release"
    blockers = [spawn(renvoy, cluster, f"feat/full{i}", f"@wait-for {release}\n@result full") for i in range(2)]
    for b in blockers:
        wait_until(lambda: status_of(renvoy, b["name"])["state"] == "running", timeout=120, interval=1)
    a = spawn(renvoy, cluster, "feat/pa", "@write a.txt a\n@commit a\n@result a")
    b = spawn(renvoy, cluster, "feat/pb", "@write b.txt b\n@commit b\n@result b")
    assert job_of(cluster, a["job_id"])["status"] == "PENDING" and job_of(cluster, b["job_id"])["status"] == "PENDING"
    began = time.monotonic()
    stopped = renvoy("parallel", "stop", "--worker", a["name"], timeout=200)
    took = time.monotonic() - began
    assert stopped.code == 0 and stopped.data["state"] == "stopped", stopped.stdout + stopped.stderr
    assert stopped.data["reason"] == "cancelled" and took < 20, (took, stopped.data)
    began = time.monotonic()
    gone = renvoy("parallel", "cleanup", "--worker", b["name"], "--force", timeout=200)
    took = time.monotonic() - began
    assert gone.code == 0 and gone.data["removed"][0]["name"] == b["name"], gone.stdout + gone.stderr
    assert took < 20, took
    # Ray refuses to delete a job that has not ended (2.60: a 500): logged, not fatal
    assert f"deleting job {b['job_id']}" in (repo / ".git" / "envoy" / "envoy.log").read_text()
    resumed = renvoy("parallel", "resume", "--worker", a["name"], "--task", "go on")
    assert resumed.code == 1 and resumed.error["type"] == "invalid_input" and "cleanup" in resumed.error["suggestion"]
    # Room on the cluster: both cancelled jobs get their slot in turn, and run nothing.
    release.touch()
    # Ray 2.60 ends a job it was told to stop while pending once it places it (STOPPED);
    # should it run the entrypoint anyway, the run finds its job ref gone and exits, saying so.
    for job in (a["job_id"], b["job_id"]):
        wait_until(lambda: job_of(cluster, job)["status"] in ("SUCCEEDED", "FAILED", "STOPPED"), timeout=240,
                   interval=1)
        ended, logs = job_of(cluster, job), job_of(cluster, job, "/logs")["logs"]
        assert ended["status"] == "STOPPED" or ended["status"] == "SUCCEEDED" and "cancelled" in logs, (ended, logs)
    refs = git(remote, "for-each-ref", "--format=%(refname)")
    assert not [r for r in refs.split() if r.startswith(("refs/envoy/workers/feat-pa/", "refs/envoy/workers/feat-pb/"))]
    tip = subprocess.run(["git", "rev-parse", "--verify", "-q", "feat/pa"], cwd=repo, capture_output=True, text=True)
    assert tip.stdout.strip() in ("", git(repo, "rev-parse", "HEAD").strip())  # no commit came back
    assert status_of(renvoy, a["name"])["state"] == "stopped"


# Last: it kills the cluster's only worker node, so no test after it can run a job
# (pytest runs a module's tests in file order; the cluster is the module's).
def test_a_node_killed_mid_run_fails_the_worker_and_keeps_its_commits(renvoy: Any, cluster: Cluster,
                                                                      repo: Path, remote: Path,
                                                                      tmp_path: Path) -> None:
    record = spawn(renvoy, cluster, "feat/doomed", f"@write d.txt d\n@commit d\n@wait-for {tmp_path}/never")
    wait_until(lambda: "refs/envoy/workers/feat-doomed/head" in git(remote, "for-each-ref"), 120, 0.5)
    cluster.ray.kill_worker_node()
    view = wait_until(lambda: (lambda v: v if v["state"] == "failed" else None)(status_of(renvoy, record["name"])),
                      timeout=180, interval=2)
    assert view["reason"] == "node_lost" and "node" in view["error"], view
    assert git(repo, "show", "feat/doomed:d.txt").strip() == "d"
    time.sleep(0)
