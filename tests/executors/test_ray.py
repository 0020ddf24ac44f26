"""The Ray executor against a small fake of Ray's Job Submission REST API (a real
HTTP server on 127.0.0.1 that keeps jobs and packages in memory and logs every
request), with real git: a bare repository as the shared remote. The real
cluster is in tests/e2e/test_ray_e2e.py."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest

from conftest import Envoy, git, wait_until, watchers
from envoy.errors import EnvoyError
from envoy.executors.ray_api import RayJobs, base_url


class FakeRay:
    """Jobs and packages in memory; `requests` logs (method, path, headers, body)."""

    def __init__(self, token: str | None = None, port: int = 0) -> None:
        self.token = token
        self.jobs: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}  # submission id -> its job's log
        self.packages: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, code: int, body: Any = None) -> None:
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append((self.command, self.path, dict(self.headers), body))
                if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._answer(401, {"error": "Unauthorized: Missing authentication token"})
                path = self.path
                if path.startswith("/api/packages/"):
                    name = path[len("/api/packages/"):]
                    if self.command == "PUT":
                        fake.packages[name] = body
                        return self._answer(200)
                    return self._answer(200 if name in fake.packages else 404)
                if path == "/api/jobs/" and self.command == "GET":
                    return self._answer(200, list(fake.jobs.values()))
                if path == "/api/jobs/" and self.command == "POST":
                    spec = json.loads(body)
                    job = {"submission_id": spec["submission_id"], "status": "PENDING", "message": "",
                           "entrypoint": spec["entrypoint"], "metadata": spec.get("metadata"),
                           "runtime_env": spec.get("runtime_env"),
                           "entrypoint_resources": spec.get("entrypoint_resources"), "driver_node_id": None}
                    fake.jobs[spec["submission_id"]] = job
                    return self._answer(200, {"job_id": spec["submission_id"],
                                              "submission_id": spec["submission_id"]})
                if path.startswith("/api/jobs/") and path.endswith("/logs") and self.command == "GET":
                    if path.split("/")[3] not in fake.jobs:
                        return self._answer(404)
                    return self._answer(200, {"logs": fake.logs.get(path.split("/")[3], "")})
                if path.startswith("/api/jobs/") and path.endswith("/stop") and self.command == "POST":
                    job = fake.jobs.get(path.split("/")[3])
                    if job is None:
                        return self._answer(404)
                    if job["status"] != "PENDING":  # Ray 2.60 says yes to a pending job and keeps it PENDING
                        job["status"] = "STOPPED"
                    return self._answer(200, {"stopped": True})
                if path.startswith("/api/jobs/") and self.command == "DELETE":
                    job = fake.jobs.get(path.split("/")[3])
                    if job is not None and job["status"] not in ("SUCCEEDED", "FAILED", "STOPPED"):
                        self.send_response(500)  # as Ray 2.60 answered for a pending job: not deleted, no word why
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return None
                    fake.jobs.pop(path.split("/")[3], None)
                    return self._answer(200, {"deleted": True})
                return self._answer(404)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self, watcher: bool = False) -> list[tuple[str, str]]:
        """The requests made (method, path): the verbs' only, or the remote watcher's."""
        return [(m, p) for m, p, headers, _ in list(self.requests)
                if (headers.get("User-Agent") == "envoy-watcher") == watcher]


@pytest.fixture
def ray() -> Iterator[FakeRay]:
    fake = FakeRay(token="t0ken")
    yield fake
    fake.stop()


def stop_watchers(repo: Path) -> None:
    for _ in range(2):  # again a moment later: one may have been between its fork and its exec
        for pid in watchers(repo):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        wait_until(lambda: not watchers(repo), timeout=30)
        time.sleep(0.3)


@pytest.fixture
def remote(repo: Path, tmp_path: Path) -> Iterator[Path]:
    bare = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    git(repo, "remote", "add", "origin", str(bare))
    yield bare
    stop_watchers(repo)  # a worker the test left active keeps its watcher looking


def spawn(envoy: Envoy, ray: FakeRay, branch: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    return envoy("parallel", "spawn", "--on", ray.url.replace("http://", "ray://"), "--branch", branch,
                 "--task", "do it", *extra, env={"PARALLEL_RAY_TOKEN": "t0ken", **(env or {})})


# -- the client -------------------------------------------------------------
def test_addresses_are_a_dashboard_host_and_port_without_credentials() -> None:
    assert base_url("ray://head:8265") == "http://head:8265"
    assert base_url("https://ray.example.com/proxy/") == "https://ray.example.com:8265/proxy"
    assert base_url("ray://head") == "http://head:8265"
    for bad in ("ray://user:pw@head:8265", "ftp://head", "ray://", "ray://head:99999"):
        with pytest.raises(EnvoyError) as refused:
            base_url(bad)
        assert refused.value.kind == "invalid_input"


def test_the_token_goes_as_a_bearer_header_and_a_refusal_says_to_set_it(ray: FakeRay) -> None:
    assert RayJobs(ray.url, "t0ken").jobs() == []
    assert ray.requests[-1][2]["Authorization"] == "Bearer t0ken"
    with pytest.raises(EnvoyError) as refused:
        RayJobs(ray.url, None).jobs()
    assert refused.value.kind == "cluster_error" and "PARALLEL_RAY_TOKEN" in refused.value.suggestion


def test_an_unreachable_cluster_is_a_typed_error_naming_the_address() -> None:
    with pytest.raises(EnvoyError) as refused:
        RayJobs("http://127.0.0.1:9", None, timeout=2).jobs()
    assert refused.value.kind == "cluster_unreachable"
    assert refused.value.extra["address"] == "http://127.0.0.1:9" and "127.0.0.1:9" in refused.value.message


# -- spawn --------------------------------------------------------------------
def test_spawn_submits_one_job_per_worker_and_sends_no_secret(envoy: Envoy, repo: Path, remote: Path,
                                                              ray: FakeRay) -> None:
    secret = "sk-ant-very-secret-value"
    done = spawn(envoy, ray, "feat/one", env={"ANTHROPIC_API_KEY": secret, "PARALLEL_RAY_RESOURCE":
                                             '{"envoy_worker": 1, "gpu_box": 0.5}'})
    assert done.code == 0, done.stdout + done.stderr
    view = done.data
    assert view["state"] == "queued" and view["executor"] == "ray" and view["pending_on"] == "cluster"
    job = ray.jobs[view["job_id"]]
    assert job["submission_id"].startswith("envoy-feat-one-")
    assert job["metadata"] == {"envoy_worker": "feat-one", "envoy_branch": "feat/one", "envoy_run": "1"}
    assert job["entrypoint_resources"] == {"envoy_worker": 1, "gpu_box": 0.5}
    assert job["runtime_env"]["working_dir"].startswith("gcs://_ray_pkg_")
    sent = b"".join(body + json.dumps(headers).encode() for _, path, headers, body in ray.requests
                    if not path.startswith("/api/packages"))
    assert secret.encode() not in sent and b"ANTHROPIC" not in sent
    # The only ref envoy pushed is the job's: the base travels as its parent.
    refs = git(remote, "for-each-ref", "--format=%(refname)").split()
    assert refs == ["refs/envoy/workers/feat-one/job-1"]
    head = git(repo, "rev-parse", "main").strip()
    assert git(remote, "rev-parse", "refs/envoy/workers/feat-one/job-1^").strip() == head
    assert git(remote, "show", "refs/envoy/workers/feat-one/job-1:task") == "do it"


def test_the_package_is_uploaded_once_per_content(envoy: Envoy, remote: Path, ray: FakeRay) -> None:
    assert spawn(envoy, ray, "feat/a").code == 0
    assert spawn(envoy, ray, "feat/b").code == 0
    puts = [p for m, p in ray.calls() if m == "PUT"]
    gets = [p for m, p in ray.calls() if m == "GET" and p.startswith("/api/packages/")]
    assert len(puts) == 1 and len(gets) == 2 and gets[0] == gets[1] == puts[0]


def test_spawn_refuses_a_remote_url_with_a_password(envoy: Envoy, repo: Path, ray: FakeRay) -> None:
    refused = spawn(envoy, ray, "feat/x", "--remote", "https://me:hunter2@git.example.com/r.git")
    assert refused.code == 1 and refused.error["type"] == "invalid_input"
    assert ray.requests == [] and not (repo / ".git" / "envoy" / "workers" / "feat-x.json").exists()


# -- status -------------------------------------------------------------------
def test_status_of_a_fleet_costs_one_request(envoy: Envoy, remote: Path, ray: FakeRay) -> None:
    for i in range(6):
        assert spawn(envoy, ray, f"feat/w{i}").code == 0
    jobs = list(ray.jobs.values())
    jobs[0]["status"], jobs[0]["driver_node_id"], jobs[0]["start_time"] = "RUNNING", "node-abc", 1_796_000_000_000
    before = len(ray.calls())
    rows = {w["name"]: w for w in envoy("parallel", "status", env={"PARALLEL_RAY_TOKEN": "t0ken"}).data["workers"]}
    assert ray.calls()[before:] == [("GET", "/api/jobs/")]
    first = jobs[0]["metadata"]["envoy_worker"]
    assert rows[first]["state"] == "running" and rows[first]["node"] == "node-abc"
    assert all(r["state"] == "queued" and r["pending_on"] == "cluster" for n, r in rows.items() if n != first)
    before = len(ray.calls())
    one = envoy("parallel", "status", "--worker", first, env={"PARALLEL_RAY_TOKEN": "t0ken"}).data["workers"]
    assert [w["name"] for w in one] == [first] and ray.calls()[before:] == [("GET", "/api/jobs/")]


def test_an_unreachable_cluster_shows_on_its_rows_and_local_rows_are_unaffected(envoy: Envoy, remote: Path,
                                                                                ray: FakeRay) -> None:
    assert spawn(envoy, ray, "feat/far").code == 0
    assert envoy("parallel", "spawn", "--branch", "feat/near", "--task", "@result near", "--wait").code == 0
    ray.stop()
    status = envoy("parallel", "status")
    assert status.code == 0
    rows = {w["name"]: w for w in status.data["workers"]}
    assert rows["feat-far"]["cluster_error"]["type"] == "cluster_unreachable"
    assert rows["feat-far"]["cluster_error"]["address"] == ray.url and rows["feat-far"]["state"] == "queued"
    assert rows["feat-near"]["state"] == "succeeded" and "cluster_error" not in rows["feat-near"]


def test_a_job_the_cluster_stopped_ends_the_worker_stopped_with_its_work_fetched(envoy: Envoy, repo: Path,
                                                                                 remote: Path, ray: FakeRay) -> None:
    view = spawn(envoy, ray, "feat/s").data
    # What the node would have pushed before it was stopped: a commit on the worker's head ref.
    git(repo, "switch", "-qc", "scratch")
    (repo / "s.txt").write_text("s\n")
    git(repo, "add", "s.txt")
    git(repo, "commit", "-qm", "s")
    git(repo, "push", "-q", "origin", "scratch:refs/envoy/workers/feat-s/head")
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-qD", "scratch")
    ray.jobs[view["job_id"]].update(status="STOPPED", message="Job was intentionally stopped.")
    row = envoy("parallel", "status", "--worker", "feat-s", env={"PARALLEL_RAY_TOKEN": "t0ken"}).data["workers"][0]
    assert row["state"] == "stopped" and row["reason"] == "stopped" and "outside envoy" in row["error"]
    assert git(repo, "show", "feat/s:s.txt") == "s\n"  # fetched back as the local branch


def test_cleanup_of_a_pending_remote_worker_cancels_its_job_at_once_and_keeps_the_remotes_work_refs(
        envoy: Envoy, repo: Path, remote: Path, ray: FakeRay) -> None:
    view = spawn(envoy, ray, "feat/c").data
    # An earlier envoy-pushed ref of the worker's work stays whatever happens to its job ref.
    git(remote, "update-ref", "refs/envoy/workers/feat-c/head", "refs/envoy/workers/feat-c/job-1^")
    began = time.monotonic()
    gone = envoy("parallel", "cleanup", "--worker", "feat-c", env={"PARALLEL_RAY_TOKEN": "t0ken"})
    assert gone.code == 0 and gone.data["removed"][0]["name"] == "feat-c", gone.stdout + gone.stderr
    assert time.monotonic() - began < 10  # not the cluster's grace: the job never ends while it is pending
    assert ("POST", f"/api/jobs/{view['job_id']}/stop") in ray.calls()
    assert ("DELETE", f"/api/jobs/{view['job_id']}") in ray.calls()  # tried; Ray refuses a job that has not ended
    assert ray.jobs[view["job_id"]]["status"] == "PENDING"
    assert f"deleting job {view['job_id']}" in (repo / ".git" / "envoy" / "envoy.log").read_text()
    # The job's ref (the task) is gone, so the job runs nothing if it gets a slot; the work's refs stay.
    assert git(remote, "for-each-ref", "--format=%(refname)").split() == ["refs/envoy/workers/feat-c/head"]


def test_stop_of_a_pending_remote_worker_cancels_it_and_resume_says_what_to_do(envoy: Envoy, repo: Path,
                                                                              remote: Path, ray: FakeRay) -> None:
    env = {"PARALLEL_RAY_TOKEN": "t0ken"}
    view = spawn(envoy, ray, "feat/p").data
    assert "refs/envoy/workers/feat-p/job-1" in git(remote, "for-each-ref")
    stopped = envoy("parallel", "stop", "--worker", "feat-p", env=env)
    assert stopped.code == 0, stopped.stdout + stopped.stderr
    assert stopped.data["state"] == "stopped" and stopped.data["reason"] == "cancelled", stopped.data
    assert "before it started" in stopped.data["error"]
    assert "refs/envoy/workers/feat-p/job-1" not in git(remote, "for-each-ref")
    assert ("POST", f"/api/jobs/{view['job_id']}/stop") in ray.calls()
    row = envoy("parallel", "status", "--worker", "feat-p", env=env).data["workers"][0]
    assert row["state"] == "stopped"  # the still-pending job does not bring it back
    again = envoy("parallel", "stop", "--worker", "feat-p", env=env)
    assert again.code == 1 and again.error["type"] == "already_stopped" and "cancelled" in again.error["message"]
    resumed = envoy("parallel", "resume", "--worker", "feat-p", "--task", "go on", env=env)
    assert resumed.code == 1 and resumed.error["type"] == "invalid_input", resumed.stdout
    assert "cancelled before its first run started" in resumed.error["message"]
    assert "cleanup --worker feat-p" in resumed.error["suggestion"]
    assert len(ray.jobs) == 1  # nothing submitted
    results = envoy("parallel", "results", "--worker", "feat-p", env=env)
    assert results.code == 0 and results.data["results"][0]["state"] == "stopped", results.stdout + results.stderr


def test_a_job_its_node_took_first_is_stopped_through_the_cluster_not_cancelled(envoy: Envoy, repo: Path,
                                                                               remote: Path, ray: FakeRay) -> None:
    env = {"PARALLEL_RAY_TOKEN": "t0ken"}
    view = spawn(envoy, ray, "feat/t").data
    # What node.claim does when the job starts: the job ref moves to a child of the job's commit.
    ref = "refs/envoy/workers/feat-t/job-1"
    job = git(remote, "rev-parse", ref).strip()
    started = git(remote, "commit-tree", f"{job}^{{tree}}", "-p", job, "-m", "started").strip()
    git(remote, "update-ref", ref, started)
    ray.jobs[view["job_id"]]["status"] = "RUNNING"  # the record still says queued: no look since
    stopped = envoy("parallel", "stop", "--worker", "feat-t", env=env)
    assert stopped.code == 0, stopped.stdout + stopped.stderr
    assert stopped.data["state"] == "stopped" and stopped.data["reason"] == "stopped", stopped.data
    assert "by envoy" in stopped.data["error"]
    assert git(remote, "rev-parse", ref).strip() == started  # not cancelled: it ran, and was stopped


def test_resume_after_a_cancelled_resume_continues_the_last_run_that_ran(envoy: Envoy, repo: Path, remote: Path,
                                                                         ray: FakeRay) -> None:
    env = {"PARALLEL_RAY_TOKEN": "t0ken"}
    first = spawn(envoy, ray, "feat/r").data
    base = git(repo, "rev-parse", "HEAD").strip()
    push_record(repo, "feat-r", 1, {"exit_code": 0, "why": None, "wip": None, "head": base}, {"head": base})
    ray.jobs[first["job_id"]].update(status="SUCCEEDED")
    assert envoy("parallel", "status", "--worker", "feat-r", env=env).data["workers"][0]["state"] == "succeeded"
    for run in (2, 3):  # two resumes, each taken back while pending
        resumed = envoy("parallel", "resume", "--worker", "feat-r", "--task", f"go on {run}", env=env)
        assert resumed.code == 0, resumed.stdout + resumed.stderr
        assert f"refs/envoy/workers/feat-r/job-{run}" in git(remote, "for-each-ref")
        stopped = envoy("parallel", "stop", "--worker", "feat-r", env=env)
        assert stopped.code == 0 and stopped.data["reason"] == "cancelled", stopped.stdout + stopped.stderr
    resumed = envoy("parallel", "resume", "--worker", "feat-r", "--task", "now", env=env)
    assert resumed.code == 0, resumed.stdout + resumed.stderr
    job = "refs/envoy/workers/feat-r/job-4"
    assert git(remote, "show", f"{job}:transcript.jsonl") == '{"type":"user"}\n'  # run 1's session
    assert git(remote, "show", f"{job}:task") == "now"


def node_commit(repo: Path, path: str, message: str) -> str:
    """A commit such as a worker's node makes (a file, on top of main), on no branch here."""
    git(repo, "switch", "-qc", "node-work")
    (repo / path).write_text(path + "\n")
    git(repo, "add", path)
    git(repo, "commit", "-qm", message)
    tip = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-qD", "node-work")
    return tip


def push_run(repo: Path, name: str, run: int, stream: str, ending: dict[str, Any], head: str) -> None:
    """What a node pushes at a run's end: the branch and the run's record."""
    record_env = {"GIT_INDEX_FILE": str(repo / ".git" / "test-index")}
    import os

    env = {**os.environ, **record_env}
    for file, data in (("stream.jsonl", stream), ("ending.json", json.dumps(ending))):
        blob = subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data, text=True,
                              capture_output=True, check=True).stdout.strip()
        subprocess.run(["git", "update-index", "--add", "--cacheinfo", f"100644,{blob},{file}"], cwd=repo,
                       env=env, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=repo, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()
    commit = git(repo, "commit-tree", tree, "-m", "run").strip()
    git(repo, "push", "-q", "origin", f"{commit}:refs/envoy/workers/{name}/run-{run}",
        f"{head}:refs/envoy/workers/{name}/head")


def test_after_submits_the_dependent_once_its_dependency_succeeded(envoy: Envoy, repo: Path, remote: Path,
                                                                   ray: FakeRay) -> None:
    first = spawn(envoy, ray, "feat/first").data
    second = spawn(envoy, ray, "feat/second", "--after", "feat-first").data
    assert second["state"] == "queued" and "job_id" not in second and len(ray.jobs) == 1
    tip = node_commit(repo, "f.txt", "first's work")
    sample = (Path(__file__).parent.parent / "samples" / "success.jsonl").read_text()
    push_run(repo, "feat-first", 1, sample, {"exit_code": 0, "why": None, "wip": None}, tip)
    ray.jobs[first["job_id"]].update(status="SUCCEEDED", driver_node_id="n1")
    env = {"PARALLEL_RAY_TOKEN": "t0ken"}
    rows = {w["name"]: w for w in envoy("parallel", "status", env=env).data["workers"]}
    assert rows["feat-first"]["state"] == "succeeded" and rows["feat-first"]["node"] == "n1"
    assert git(repo, "rev-parse", "feat/first").strip() == tip  # fetched back
    rows = {w["name"]: w for w in envoy("parallel", "status", env=env).data["workers"]}
    assert rows["feat-second"].get("job_id") in ray.jobs  # submitted now, from its dependency's tip
    assert git(remote, "rev-parse", "refs/envoy/workers/feat-second/job-1^").strip() == tip


def test_why_a_job_ended_is_said_in_rays_words() -> None:
    from envoy.executors.ray_end import job_ending

    record: Any = {"name": "w", "branch": "feat/w", "job_id": "envoy-w-1", "stop_requested": False}
    died = job_ending(record, {"status": "FAILED", "message": "Job supervisor actor died: the node 1a2b was "
                                                              "marked dead (raylet missed heartbeats)"}, "http://h:8265")
    assert died["reason"] == "node_lost" and "raylet" in died["error"] and "feat/w" in died["error"]
    failed = job_ending(record, {"status": "FAILED", "message": "Job entrypoint command failed with exit code 2",
                                 "driver_exit_code": 2}, "http://h:8265")
    assert failed["reason"] == "job_failed" and failed["exit_code"] == 2
    assert job_ending({**record, "stop_requested": True}, {"status": "STOPPED"}, "x")["error"].startswith(
        "stopped: its Ray job was stopped by envoy")
    assert job_ending(record, None, "http://h:8265")["reason"] == "job_lost"


def test_a_records_executor_fields_are_checked_when_read() -> None:
    from envoy.worker.record import problem_with

    good: Any = {"name": "w", "branch": "w", "state": "queued", "path": "/tmp/claude-worker-w",
                 "executor": "ray", "cluster": "http://h:8265", "remote_url": "/srv/r.git", "job_id": "envoy-w-1"}
    assert problem_with(good, "w") is None
    for key, bad in (("executor", "ssh"), ("cluster", "http://user:pw@h:8265"), ("cluster", "file:///etc"),
                     ("remote_url", "--upload-pack=evil"), ("wip_ref", "refs/heads/main")):
        assert problem_with({**good, key: bad}, "w") is not None, key


# -- resume: the last run's uncommitted work goes to the node ---------------------
def push_record(repo: Path, name: str, run: int, ending: dict[str, Any], refs: dict[str, str]) -> None:
    """What a node pushes at a run's end, with a session transcript: its record, and `refs`
    (head, wip) as given."""
    from envoy.git import Git

    files = {"stream.jsonl": (Path(__file__).parent.parent / "samples" / "success.jsonl").read_bytes(),
             "ending.json": json.dumps(ending).encode(), "transcript.jsonl": b'{"type":"user"}\n'}
    record = Git(repo).commit_files(files, [], f"run {run}")
    git(repo, "push", "-q", "origin", f"+{record}:refs/envoy/workers/{name}/run-{run}",
        *(f"+{sha}:refs/envoy/workers/{name}/{ref}" for ref, sha in refs.items()))


def test_resume_sends_the_last_runs_uncommitted_work_only_when_it_left_some(envoy: Envoy, repo: Path, remote: Path,
                                                                           ray: FakeRay) -> None:
    env = {"PARALLEL_RAY_TOKEN": "t0ken"}
    first = spawn(envoy, ray, "feat/w").data
    git(repo, "switch", "-qc", "scratch")  # what the node made: a commit, and uncommitted work on top of it
    (repo / "w.txt").write_text("w\n")
    git(repo, "add", "w.txt")
    git(repo, "commit", "-qm", "w")
    tip = git(repo, "rev-parse", "HEAD").strip()
    (repo / "left.txt").write_text("left\n")
    git(repo, "add", "left.txt")
    git(repo, "commit", "-qm", "uncommitted work")
    wip = git(repo, "rev-parse", "HEAD").strip()
    git(repo, "switch", "-q", "main")
    git(repo, "branch", "-qD", "scratch")
    push_record(repo, "feat-w", 1, {"exit_code": 0, "why": None, "wip": wip, "head": tip}, {"head": tip, "wip": wip})
    ray.jobs[first["job_id"]].update(status="SUCCEEDED")
    row = envoy("parallel", "status", "--worker", "feat-w", env=env).data["workers"][0]
    assert row["state"] == "succeeded" and row["wip_ref"] == "refs/envoy/wip/feat-w"
    resumed = envoy("parallel", "resume", "--worker", "feat-w", "--task", "go on", env=env)
    assert resumed.code == 0, resumed.stdout + resumed.stderr
    job = "refs/envoy/workers/feat-w/job-2"
    assert json.loads(git(remote, "show", f"{job}:spec.json"))["wip"] == wip
    assert git(remote, "rev-list", "--parents", "-n1", job).split()[1:] == [tip, wip]  # it travels with the job
    # Run 2 left nothing uncommitted: a resume after it sends none (the remote's wip ref is run 1's).
    push_record(repo, "feat-w", 2, {"exit_code": 0, "why": None, "wip": None, "head": tip}, {"head": tip})
    ray.jobs[resumed.data["job_id"]].update(status="SUCCEEDED")
    row = envoy("parallel", "status", "--worker", "feat-w", env=env).data["workers"][0]
    assert row["state"] == "succeeded" and row.get("wip_ref") is None
    assert envoy("parallel", "resume", "--worker", "feat-w", "--task", "again", env=env).code == 0
    job = "refs/envoy/workers/feat-w/job-3"
    assert "wip" not in json.loads(git(remote, "show", f"{job}:spec.json"))
    assert git(remote, "rev-list", "--parents", "-n1", job).split()[1:] == [tip]


def test_stop_all_takes_back_a_pending_fleet_in_one_push_and_stops_the_one_that_started(
        envoy: Envoy, repo: Path, remote: Path, ray: FakeRay) -> None:
    env = {"PARALLEL_RAY_TOKEN": "t0ken"}
    lines = "".join(json.dumps({"branch": f"fleet/w{i}", "task": "t"}) + "\n" for i in range(5))
    done = envoy("parallel", "spawn", "--batch", "-", "--on", ray.url.replace("http://", "ray://"), env=env,
                 input=lines)
    assert done.code == 0, done.stdout + done.stderr
    ref = "refs/envoy/workers/fleet-w2/job-1"  # this one's node took its run (node.claim)
    job = git(remote, "rev-parse", ref).strip()
    git(remote, "update-ref", ref, git(remote, "commit-tree", f"{job}^{{tree}}", "-p", job, "-m", "started").strip())
    ray.jobs[done.data["workers"][2]["job_id"]]["status"] = "RUNNING"
    git(remote, "config", "receive.denyDeletes", "false")
    hook = remote / "hooks" / "pre-receive"  # counts the pushes the remote receives
    hook.write_text(f"#!/bin/sh\necho push >> {remote / 'pushes'}\n")
    hook.chmod(0o755)
    stopped = envoy("parallel", "stop", "--all", env=env)
    assert stopped.code == 0, stopped.stdout + stopped.stderr
    assert sorted(stopped.data["stopped"]) == [f"fleet-w{i}" for i in range(5)]
    assert (remote / "pushes").read_text() == "push\n"  # the four cancels in one push
    rows = {w["name"]: w for w in envoy("parallel", "status", env=env).data["workers"]}
    assert [n for n, w in sorted(rows.items()) if w["reason"] == "cancelled"] == ["fleet-w0", "fleet-w1", "fleet-w3",
                                                                                  "fleet-w4"]
    assert rows["fleet-w2"]["reason"] == "stopped" and "by envoy" in rows["fleet-w2"]["error"]
    assert git(remote, "for-each-ref", "--format=%(refname)").split() == [ref]


def test_cleanup_all_takes_back_a_pending_fleet_in_one_push(envoy: Envoy, repo: Path, remote: Path,
                                                            ray: FakeRay) -> None:
    env = {"PARALLEL_RAY_TOKEN": "t0ken"}
    lines = "".join(json.dumps({"branch": f"fleet/c{i}", "task": "t"}) + "\n" for i in range(4))
    done = envoy("parallel", "spawn", "--batch", "-", "--on", ray.url.replace("http://", "ray://"), env=env,
                 input=lines)
    assert done.code == 0, done.stdout + done.stderr
    hook = remote / "hooks" / "pre-receive"  # counts the pushes the remote receives
    hook.write_text(f"#!/bin/sh\necho push >> {remote / 'pushes'}\n")
    hook.chmod(0o755)
    gone = envoy("parallel", "cleanup", "--all", env=env)
    assert gone.code == 0, gone.stdout + gone.stderr
    assert sorted(r["name"] for r in gone.data["removed"]) == [f"fleet-c{i}" for i in range(4)]
    assert (remote / "pushes").read_text() == "push\n"
    assert git(remote, "for-each-ref") == ""
    assert envoy("parallel", "status", env=env).data["workers"] == []


def test_the_budget_takes_back_a_pending_remote_worker_through_its_executor(envoy: Envoy, repo: Path,
                                                                           remote: Path, ray: FakeRay) -> None:
    env = {"PARALLEL_RAY_TOKEN": "t0ken", "PARALLEL_BUDGET_USD": "0.001"}  # the fake agent reports $0.0011 a run
    view = spawn(envoy, ray, "feat/b", env=env).data
    assert "refs/envoy/workers/feat-b/job-1" in git(remote, "for-each-ref")
    # A local run goes over the budget: its finisher starts the budget stop (`envoy _budget`).
    assert envoy("parallel", "spawn", "--branch", "costly", "--task", "@result ok", env=env).code == 0
    row = wait_until(lambda: (lambda w: w if w["state"] == "stopped" else None)(
        envoy("parallel", "status", "--worker", "feat-b", env=env).data["workers"][0]), timeout=60)
    # Its job, still pending on the cluster, is cancelled: the task's ref is gone from the remote, so the
    # job runs nothing if it ever gets a slot, and Ray was told to stop it.
    assert "refs/envoy/workers/feat-b/job-1" not in git(remote, "for-each-ref")
    assert ("POST", f"/api/jobs/{view['job_id']}/stop") in ray.calls()
    assert row["reason"] == "cancelled" and "before it started" in row["error"], row


def test_the_budget_stops_a_running_remote_worker_through_its_cluster(envoy: Envoy, repo: Path, remote: Path,
                                                                     ray: FakeRay) -> None:
    env = {"PARALLEL_RAY_TOKEN": "t0ken", "PARALLEL_BUDGET_USD": "0.001"}  # the fake agent reports $0.0011 a run
    view = spawn(envoy, ray, "feat/u", env=env).data
    # Its node took the run (node.claim moves the job ref) and Ray runs it; the record still says queued.
    ref = "refs/envoy/workers/feat-u/job-1"
    job = git(remote, "rev-parse", ref).strip()
    started = git(remote, "commit-tree", f"{job}^{{tree}}", "-p", job, "-m", "started").strip()
    git(remote, "update-ref", ref, started)
    ray.jobs[view["job_id"]]["status"] = "RUNNING"
    assert envoy("parallel", "spawn", "--branch", "costly", "--task", "@result ok", env=env).code == 0
    wait_until(lambda: ray.jobs[view["job_id"]]["status"] == "STOPPED", timeout=60)  # the cluster was told
    row = wait_until(lambda: (lambda w: w if w["state"] == "stopped" else None)(
        envoy("parallel", "status", "--worker", "feat-u", env=env).data["workers"][0]), timeout=60)
    assert row["reason"] == "stopped" and "by envoy" in row["error"], row
    assert git(remote, "rev-parse", ref).strip() == started  # not cancelled: it ran, and was stopped
