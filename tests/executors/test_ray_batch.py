"""spawn --batch --on ray://...: a whole batch submitted from one process, against
the fake Job Submission API of test_ray.py and a bare repository as the remote.
The remote counts its pushes with a pre-receive hook (it runs once per push,
however many refs the push carries)."""
from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from conftest import Envoy, git
from executors.test_ray import FakeRay, node_commit, push_run, ray, remote  # noqa: F401 (fixtures)

TOKEN = {"PARALLEL_RAY_TOKEN": "t0ken"}


def lines(*entries: dict[str, Any]) -> str:
    return "".join(json.dumps(e) + "\n" for e in entries)


def count_pushes(bare: Path) -> Path:
    """A pre-receive hook on the remote that adds a line to the returned file per push."""
    log = bare / "pushes.log"
    hook = bare / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\necho push >> {log}\ncat > /dev/null\n")
    hook.chmod(0o755)
    return log


def pushes(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def batch(envoy: Envoy, ray: FakeRay, text: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    return envoy("parallel", "spawn", "--batch", "-", "--on", ray.url.replace("http://", "ray://"), *extra,
                 input=text, env={**TOKEN, **(env or {})})


def refuse_jobs_of(ray: FakeRay, *workers: str) -> None:
    """The fake cluster answers 500 to the submission of these workers' jobs (and only those)."""
    base = ray.server.RequestHandlerClass

    class Refusing(base):  # type: ignore[misc, valid-type]
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/api/jobs/" and json.loads(body).get("metadata", {}).get("envoy_worker") in workers:
                ray.requests.append((self.command, self.path, dict(self.headers), body))
                data = b'{"error": "Job submission failed: the GCS is overloaded"}'
                self.send_response(500)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.rfile = io.BytesIO(body)
            base.do_POST(self)

    ray.server.RequestHandlerClass = Refusing


def remote_refs(bare: Path) -> list[str]:
    return git(bare, "for-each-ref", "--format=%(refname)").split()


def test_a_remote_batch_is_one_push_one_package_and_a_job_per_line(envoy: Envoy, repo: Path, remote: Path,
                                                                   ray: FakeRay) -> None:
    log = count_pushes(remote)
    names = [f"feat-b{i}" for i in range(5)]
    text = lines(*({"branch": f"feat/b{i}", "task": f"task {i}", "model": "opus"} for i in range(5)))
    done = batch(envoy, ray, text, env={"PARALLEL_RAY_RESOURCE": '{"envoy_worker": 1, "gpu_box": 0.5}'})
    assert done.code == 0, done.stdout + done.stderr
    rows = done.data["workers"]
    assert [r["name"] for r in rows] == names and done.data["counts"] == {"queued": 5}
    assert pushes(log) == 1  # every job ref in one push
    assert sorted(remote_refs(remote)) == sorted(f"refs/envoy/workers/{n}/job-1" for n in names)
    assert [m for m, p in ray.calls() if p.startswith("/api/packages/")] == ["GET", "PUT"]  # checked, sent once
    assert len(ray.jobs) == 5
    head = git(repo, "rev-parse", "main").strip()
    status = {w["name"]: w for w in envoy("parallel", "status", env=TOKEN).data["workers"]}
    for i, (row, name) in enumerate(zip(rows, names)):
        job = ray.jobs[row["job_id"]]
        record = status[name]
        assert job["submission_id"] == f"envoy-{name}-{record['session_id'][:8]}-1" == record["job_id"]
        assert job["metadata"] == {"envoy_worker": name, "envoy_branch": f"feat/b{i}", "envoy_run": "1"}
        assert job["entrypoint_resources"] == {"envoy_worker": 1, "gpu_box": 0.5}
        assert job["runtime_env"]["working_dir"].startswith("gcs://_ray_pkg_")
        assert record["state"] == "queued" and record["pending_on"] == "cluster" and record["executor"] == "ray"
        ref = f"refs/envoy/workers/{name}/job-1"
        assert git(remote, "show", f"{ref}:task") == f"task {i}"
        assert git(remote, "rev-parse", f"{ref}^").strip() == head  # the base travels as its parent
        assert json.loads(git(remote, "show", f"{ref}:spec.json"))["options"]["model"] == "opus"


def test_parallel_executor_sends_a_batch_to_the_cluster_too(envoy: Envoy, remote: Path, ray: FakeRay) -> None:
    done = envoy("parallel", "spawn", "--batch", "-", input=lines({"branch": "x", "task": "t"}, {"branch": "y",
                                                                                                "task": "t"}),
                 env={**TOKEN, "PARALLEL_EXECUTOR": ray.url.replace("http://", "ray://")})
    assert done.code == 0, done.stdout + done.stderr
    assert sorted(j["metadata"]["envoy_worker"] for j in ray.jobs.values()) == ["x", "y"]


@pytest.mark.parametrize("text, words", [
    (lines({"branch": "ok", "task": "t"}, {"branch": "bad..name", "task": "t"}), "batch line 2"),
    (lines({"branch": "ok", "task": "t"}, {"branch": "ok2", "task": "t", "after": "nobody"}), "'nobody'"),
    (lines({"branch": "ok", "task": "t"}, {"branch": "main", "task": "t"}), "already exists"),
])
def test_a_bad_line_submits_nothing_and_pushes_nothing(envoy: Envoy, repo: Path, remote: Path, ray: FakeRay,
                                                       text: str, words: str) -> None:
    log = count_pushes(remote)
    refused = batch(envoy, ray, text)
    assert refused.code == 1 and words in refused.error["message"], refused.stdout
    assert ray.requests == [] and pushes(log) == 0 and remote_refs(remote) == []
    assert envoy("parallel", "status", "--all").data["workers"] == []


def test_a_remote_that_is_no_remote_refuses_the_batch_before_anything(envoy: Envoy, repo: Path,
                                                                      ray: FakeRay) -> None:
    refused = batch(envoy, ray, lines({"branch": "a", "task": "t"}, {"branch": "b", "task": "t"}),
                    "--remote", "nowhere")
    assert refused.code == 1 and refused.error["type"] == "not_found", refused.stdout
    assert ray.requests == [] and envoy("parallel", "status", "--all").data["workers"] == []


def test_a_push_the_remote_refuses_records_nothing(envoy: Envoy, repo: Path, remote: Path, ray: FakeRay) -> None:
    hook = remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'no pushes today' >&2\nexit 1\n")
    hook.chmod(0o755)
    refused = batch(envoy, ray, lines({"branch": "a", "task": "t"}, {"branch": "b", "task": "t", "after": "a"}))
    assert refused.code == 1, refused.stdout
    assert [p for _, p in ray.calls() if p == "/api/jobs/"] == [] and remote_refs(remote) == []
    assert envoy("parallel", "status", "--all").data["workers"] == []
    assert not list((repo / ".git" / "envoy" / "logs").glob("*"))  # its tasks went with it


def test_a_post_refused_midway_fails_that_worker_and_keeps_the_others_submitted(envoy: Envoy, repo: Path,
                                                                                remote: Path, ray: FakeRay) -> None:
    refuse_jobs_of(ray, "w2")
    done = batch(envoy, ray, lines(*({"branch": f"w{i}", "task": "t"} for i in range(5))))
    assert done.code == 1, done.stdout
    document = json.loads(done.stdout)
    assert document["status"] == "error" and document["error"]["type"] == "start_failed"
    assert document["error"]["failed"] == ["w2"] and "GCS is overloaded" in document["error"]["message"]
    rows = {r["name"]: r for r in document["data"]["workers"]}
    assert document["data"]["counts"] == {"queued": 4, "failed": 1}
    assert rows["w2"]["state"] == "failed" and rows["w2"]["reason"] == "start_failed"
    assert "GCS is overloaded" in rows["w2"]["error"] and "job_id" not in rows["w2"]
    assert sorted(j["metadata"]["envoy_worker"] for j in ray.jobs.values()) == ["w0", "w1", "w3", "w4"]
    status = {w["name"]: w for w in envoy("parallel", "status", "--all", env=TOKEN).data["workers"]}
    assert status["w2"]["state"] == "failed" and status["w2"]["reason"] == "start_failed"
    assert all(status[n]["state"] == "queued" and status[n]["job_id"] in ray.jobs for n in ("w0", "w1", "w3", "w4"))


def test_a_single_spawn_whose_post_fails_is_recorded_failed_and_says_so(envoy: Envoy, remote: Path,
                                                                        ray: FakeRay) -> None:
    refuse_jobs_of(ray, "solo")
    refused = envoy("parallel", "spawn", "--on", ray.url.replace("http://", "ray://"), "--branch", "solo",
                    "--task", "t", env=TOKEN)
    assert refused.code == 1 and refused.error["type"] == "cluster_error", refused.stdout
    row = envoy("parallel", "status", "--all", env=TOKEN).data["workers"][0]
    assert row["state"] == "failed" and row["reason"] == "start_failed" and "500" in row["error"]


def test_an_after_line_waits_unsubmitted_until_its_dependency_succeeded(envoy: Envoy, repo: Path, remote: Path,
                                                                        ray: FakeRay) -> None:
    done = batch(envoy, ray, lines({"branch": "first", "task": "t1"}, {"branch": "second", "task": "t2",
                                                                      "after": "first"}))
    assert done.code == 0, done.stdout
    rows = {r["name"]: r for r in done.data["workers"]}
    assert rows["second"]["state"] == "queued" and "job_id" not in rows["second"]
    assert [j["metadata"]["envoy_worker"] for j in ray.jobs.values()] == ["first"]
    assert remote_refs(remote) == ["refs/envoy/workers/first/job-1"]
    tip = node_commit(repo, "f.txt", "first's work")
    sample = (Path(__file__).parent.parent / "samples" / "success.jsonl").read_text()
    push_run(repo, "first", 1, sample, {"exit_code": 0, "why": None, "wip": None}, tip)
    ray.jobs[rows["first"]["job_id"]].update(status="SUCCEEDED")
    envoy("parallel", "status", env=TOKEN)  # records first's end
    second = {w["name"]: w for w in envoy("parallel", "status", env=TOKEN).data["workers"]}["second"]
    assert second.get("job_id") in ray.jobs  # submitted now, from its dependency's tip
    assert git(remote, "show", "refs/envoy/workers/second/job-1:task") == "t2"
    assert git(remote, "rev-parse", "refs/envoy/workers/second/job-1^").strip() == tip


def test_on_local_keeps_a_batch_on_this_machine(envoy: Envoy, repo: Path, ray: FakeRay) -> None:
    done = envoy("parallel", "spawn", "--batch", "-", "--on", "local", input=lines({"branch": "here",
                                                                                   "task": "@result ok"}),
                 env={"PARALLEL_EXECUTOR": ray.url.replace("http://", "ray://")})
    assert done.code == 0, done.stdout + done.stderr
    assert ray.requests == []
    assert envoy("parallel", "wait").code == 0
    row = envoy("parallel", "status", "--all").data["workers"][0]
    assert row["state"] == "succeeded" and row.get("executor", "local") == "local"
    refused = envoy("parallel", "spawn", "--batch", "-", "--remote", "origin",
                    input=lines({"branch": "there", "task": "@result ok"}))
    assert refused.code == 1 and "--remote" in refused.error["message"]
    assert [w["name"] for w in envoy("parallel", "status", "--all").data["workers"]] == ["here"]


def test_a_resume_whose_post_fails_keeps_the_worker_resumable(envoy: Envoy, repo: Path, remote: Path,
                                                              ray: FakeRay) -> None:
    first = envoy("parallel", "spawn", "--on", ray.url.replace("http://", "ray://"), "--branch", "again",
                  "--task", "t", env=TOKEN).data
    # What the node pushes at the run's end, the session's transcript with it.
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "test-index")}
    sample = (Path(__file__).parent.parent / "samples" / "success.jsonl").read_text()

    def plumb(*args: str, data: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, input=data, capture_output=True, text=True,
                              check=True).stdout.strip()

    for file, data in (("stream.jsonl", sample), ("transcript.jsonl", sample),
                       ("ending.json", json.dumps({"exit_code": 0, "why": None, "wip": None}))):
        plumb("update-index", "--add", "--cacheinfo", f"100644,{plumb('hash-object', '-w', '--stdin', data=data)},{file}")
    run_ref = plumb("commit-tree", plumb("write-tree"), "-m", "run")
    git(repo, "push", "-q", "origin", f"{run_ref}:refs/envoy/workers/again/run-1", "main:refs/envoy/workers/again/head")
    ray.jobs[first["job_id"]].update(status="SUCCEEDED")
    assert envoy("parallel", "status", "--worker", "again", env=TOKEN).data["workers"][0]["state"] == "succeeded"
    refuse_jobs_of(ray, "again")
    refused = envoy("parallel", "resume", "--worker", "again", "--task", "more", env=TOKEN)
    assert refused.code == 1 and refused.error["type"] == "cluster_error", refused.stdout
    row = envoy("parallel", "status", "--worker", "again", env=TOKEN).data["workers"][0]
    assert row["state"] == "failed" and row["reason"] == "start_failed"
    assert row["job_id"] == first["job_id"], row  # its last real run's job, not one the cluster never had
    ray.server.RequestHandlerClass = ray.server.RequestHandlerClass.__mro__[1]  # the cluster takes jobs again
    again = envoy("parallel", "resume", "--worker", "again", "--task", "more", env=TOKEN)
    assert again.code == 0, again.stdout  # its last real run's session still resumes
    assert again.data["job_id"] in ray.jobs and again.data["job_id"].endswith("-2")
