"""Submitting Ray runs (the Ray executor's, ray.py): a commit holding the task and
the run's spec, whose parent is where the run starts (so the base travels with
it), is pushed to the remote as refs/envoy/workers/<name>/job-<run> (one `git
push` per remote for any number of runs); envoy.pyz goes to the cluster once per
content hash as the job's working_dir package; then a job is submitted per run,
a few at a time. The job's submission id is derived from the worker
(envoy-<name>-<session>-<run>), its metadata names the worker, and
`entrypoint_resources` (PARALLEL_RAY_RESOURCE, default {"envoy_worker": 1}) keeps
it off nodes without the resource. Nothing secret goes in the entrypoint,
runtime_env or metadata: the REST API shows them to anyone who can list jobs."""
from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, NamedTuple

from filelock import Timeout

from envoy.errors import EnvoyError
from envoy.executors.ray_api import client
from envoy.executors.ray_data import PREFIX, package
from envoy.worker import locks
from envoy.worker.record import Record, now_iso, transition

if TYPE_CHECKING:
    from envoy.git import Git
    from envoy.worker.store import State

DEFAULT_RESOURCE = {"envoy_worker": 1}


def resources(raw: str | None) -> dict[str, float]:
    """PARALLEL_RAY_RESOURCE: a JSON object of custom resources each job asks for."""
    if raw is None or not raw.strip():
        return dict(DEFAULT_RESOURCE)
    try:
        found = json.loads(raw)
    except ValueError:
        found = None
    if not isinstance(found, dict) or not found or not all(
            isinstance(k, str) and k and isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
            for k, v in found.items()):
        raise EnvoyError("invalid_config", f"PARALLEL_RAY_RESOURCE={raw!r} is not a JSON object of resource amounts",
                         'set it like {"envoy_worker": 1}')
    return found


def submission_id(record: Record, run: int) -> str:
    return f"envoy-{record['name']}-{record['session_id'][:8]}-{run}"


POSTS_AT_ONCE = 8  # job submissions in flight at once: the dashboard answers each in a few ms


class JobRun(NamedTuple):
    """One run to submit: the worker, its task, its run number, the commit it starts
    from, the session's transcript (a resumed run), the branches its task names and
    the last run's uncommitted work (a commit on `start`, restored on the node)."""
    record: Record
    task: str
    run: int
    start: str
    transcript: str | None
    branches: dict[str, str] | None
    wip: str | None = None


def _job_commits(git: Git, runs: list[JobRun]) -> list[str]:
    """The runs' job commits (made locally, not yet pushed; a few git processes for any
    number): the task and the run's spec; the first parent is where the run starts, the
    others carry the commits of the branches the task names (land --repair's target)
    and the last run's uncommitted work (a resume's), so the node has them."""
    commits = []
    for r in runs:
        record = r.record
        spec = {k: record.get(k) for k in ("name", "branch", "base", "base_sha", "session_id", "options")}
        branches = {b: sha for b, sha in (r.branches or {}).items() if b and not b.startswith("-")}
        extra = {"wip": r.wip} if r.wip else {}
        files = {"task": r.task.encode(),
                 "spec.json": json.dumps({**spec, "run": r.run, "branches": branches, **extra}).encode()}
        if r.transcript is not None:
            files["transcript.jsonl"] = r.transcript.encode()
        commits.append((files, list(dict.fromkeys([r.start, *branches.values(), *([r.wip] if r.wip else [])])),
                        f"envoy: run {r.run} of worker {record['name']}"))
    return git.commit_files_many(commits)



def submit_many(state: State, git: Git, runs: list[JobRun], resource: str | None, *,
                locked: bool) -> list[tuple[Record, EnvoyError | None]]:
    """Push the runs' job refs (one `git push` per remote, however many runs), make sure
    the package is there (once per cluster), then submit a job per run, a few at a
    time. A failed upload or push raises with nothing recorded. A record names its
    job before the job is submitted, under the worker's lock (taken here unless
    `locked`: the caller holds it), so a `status` meanwhile does not take the job
    for lost; a crash in between leaves a worker whose job the cluster does not know
    (recorded failed at the next look). A POST that fails records its worker failed
    (start_failed, the cluster's words); the others stay submitted: real jobs."""
    asked = resources(resource)
    packages: dict[str, str] = {}
    for cluster in dict.fromkeys(r.record["cluster"] for r in runs):
        api = client(cluster)
        uri, blob = package(state)
        if not api.has_package(uri):
            api.upload_package(uri, blob)
        packages[cluster] = uri
    pushes: dict[str, list[str]] = {}
    commits: dict[str, str] = {}  # worker -> its job commit
    for r, job in zip(runs, _job_commits(git, runs)):
        pushes.setdefault(r.record["remote_url"], []).append(f"+{job}:{PREFIX}/{r.record['name']}/job-{r.run}")
        commits[r.record["name"]] = job
    for url, refspecs in pushes.items():
        git.push_refs(url, refspecs)

    def post(r: JobRun) -> tuple[Record, EnvoyError | None]:
        record, run = r.record, r.run
        lock = None if locked else locks.lock(state, locks.worker(record["name"]))
        try:
            if lock is not None:
                lock.acquire(timeout=30)
        except Timeout:  # a look holding it this long is stuck: submit as before locks were taken here
            lock = None
        try:
            sid = submission_id(record, run)
            before = {k: record.get(k) for k in ("job_id", "run", "job_status", "submitted_at", "job_commit")}
            record.update({"job_id": sid, "run": run, "job_status": "PENDING", "node": None,
                           "job_commit": commits[record["name"]],
                           "stop_requested": False, "submitted_at": now_iso(), "last_action": None,
                           "last_action_at": None})
            state.write(record)
            try:
                client(record["cluster"]).submit({
                    "entrypoint": f"python3 envoy.pyz _remote {shlex.quote(record['remote_url'])} "
                                  f"{record['name']} {run}",
                    "submission_id": sid,
                    "runtime_env": {"working_dir": packages[record["cluster"]]},
                    "entrypoint_resources": asked,
                    "metadata": {"envoy_worker": record["name"], "envoy_branch": record["branch"],
                                 "envoy_run": str(run)},
                })
            except EnvoyError as exc:
                transition(record, "failed", {"reason": "start_failed", "error": exc.message,
                                              "finished_at": now_iso()})
                for key, value in before.items():  # no such job: the record names its last real run
                    if value is None:
                        record.pop(key, None)  # type: ignore[misc]
                    else:
                        record[key] = value  # type: ignore[literal-required]
                state.write(record)
                return record, exc
            return record, None
        finally:
            if lock is not None:
                lock.release()

    if len(runs) <= 1:
        return [post(r) for r in runs]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=min(POSTS_AT_ONCE, len(runs))) as pool:
        return list(pool.map(post, runs))
