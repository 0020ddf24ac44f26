"""A remote worker's run, on the node a Ray job put it on: `envoy.pyz _remote URL NAME RUN`.

Git is the data plane. The job's ref (refs/envoy/workers/<name>/job-<run>, pushed
by the submitter) is a commit whose first parent is where the run starts (the
base, or the branch tip for a resume) and whose tree holds the task, the run's
spec and, for a resume, the session transcript. This process fetches it into a
per-node cache of the remote, checks the branch out in a worktree of its own,
runs `claude -p` there as a local worker runs (setup, permission mode, allowed
tools, timeout), and pushes back to refs/envoy/workers/<name>/:
  head     every commit as it is made (a post-commit hook), and at the end
  wip      uncommitted work at the end, as a commit on top of head
  run-<n>  the run's stream-json, stderr tail, session transcript and ending
Nothing secret travels this way: credentials are the node's own environment.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from envoy import agent, processes
from envoy.git import PUSH_ON_COMMIT_HOOK, Git, GitError, restore_uncommitted
from envoy.worker import watcher

ERR_TAIL = 64 * 1024  # bytes of the agent's stderr sent back
PARTIAL_GIT = (2, 25)  # git from which the cache is a partial clone: filters and lazy fetches are settled there


def say(text: str) -> None:
    """A line in the job's log (GET /api/jobs/{id}/logs)."""
    print(f"envoy {time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d}: {text}", flush=True)


def node_root() -> Path:
    return Path(os.environ.get("ENVOY_NODE_DIR") or Path.home() / ".cache" / "envoy" / "node")


def project_dir(cwd: Path) -> Path:
    """Where Claude Code keeps the transcripts of sessions run in `cwd`."""
    return Path.home() / ".claude" / "projects" / re.sub(r"[^A-Za-z0-9]", "-", str(cwd))


def find_transcript(session_id: str) -> Path | None:
    found = sorted((Path.home() / ".claude" / "projects").glob(f"*/{session_id}.jsonl"),
                   key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Exclusive use of the node's cache of one remote (jobs on a node share it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    say("started")
    if len(argv) != 3 or not argv[2].isdigit():
        print("usage: envoy.pyz _remote REMOTE_URL WORKER RUN", file=sys.stderr)
        return 2
    url, name, run = argv[0], argv[1], int(argv[2])
    prefix = f"refs/envoy/workers/{name}"
    root = node_root()
    cache = root / "repos" / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".git")
    cache.parent.mkdir(parents=True, exist_ok=True)
    git = Git(cache.parent)
    job = f"refs/envoy/jobs/{name}/{run}"
    with locked(cache.with_suffix(".lock")):
        if not (cache / "HEAD").is_file():
            git.run("init", "--quiet", "--bare", str(cache))
        hooks = cache / "envoy-hooks"
        hooks.mkdir(exist_ok=True)
        (hooks / "post-commit").write_text(PUSH_ON_COMMIT_HOOK)
        (hooks / "post-commit").chmod(0o755)
        git.run("config", "core.hooksPath", str(hooks), cwd=cache)
        try:
            fetch_job(git, cache, url, [f"+{prefix}/job-{run}:{job}"])
        except GitError:
            if f"{prefix}/job-{run}" in git.ls_remote(url, f"{prefix}/job-{run}", cwd=cache):
                raise
            say(f"worker {name} run {run} was cancelled before it started (its job ref is gone): nothing is run")
            return 0
    if not claim(git, cache, url, f"{prefix}/job-{run}", job, name, run):
        say(f"worker {name} run {run} was cancelled before it started (its job ref was deleted or replaced): "
            "nothing is run")
        return 0
    spec: dict[str, Any] = json.loads(git.file_at(job, "spec.json", cwd=cache) or "{}")
    task = git.file_at(job, "task", cwd=cache) or ""
    start = git.first_parent(job, cwd=cache)
    found = spec.get("branches")
    branches: dict[str, Any] = found if isinstance(found, dict) else {}
    work = root / "work" / f"{name}-{spec['session_id'][:8]}"
    runs = root / "runs" / f"{name}-{spec['session_id'][:8]}"
    runs.mkdir(parents=True, exist_ok=True)
    with locked(cache.with_suffix(".lock")):
        if work.exists():  # an earlier run of this worker on this node: start again from the pushed tip
            git.run("worktree", "remove", "--force", str(work), cwd=cache, ok=(0, 128))
            shutil.rmtree(work, ignore_errors=True)
            git.run("worktree", "prune", cwd=cache)
        work.parent.mkdir(parents=True, exist_ok=True)
        git.run("worktree", "add", "--quiet", "-B", spec["branch"], str(work), start, cwd=cache)
        restore_wip(git, work, spec.get("wip"), start)
        for branch, sha in branches.items():  # branches the task names (land --repair's target)
            if isinstance(branch, str) and isinstance(sha, str) and branch != spec["branch"] \
                    and not branch.startswith("-") and git.valid_branch_name(branch):
                git.run("update-ref", f"refs/heads/{branch}", sha, cwd=cache)
    say(f"worker {name} run {run}: {spec['branch']} at {start[:12]} in {work}")
    started = time.monotonic()
    transcript = git.file_at(job, "transcript.jsonl", cwd=cache)
    if transcript is not None:  # a resume: the session comes back where Claude Code looks for it
        target = project_dir(work) / f"{spec['session_id']}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(transcript)
    out, err = runs / f"{run}.jsonl", runs / f"{run}.err"
    (runs / f"{run}.task").write_text(task)
    ending = run_agent(spec, run, work, url, f"{prefix}/head", runs / f"{run}.task", out, err)
    say(f"agent ended after {time.monotonic() - started:.1f}s: {ending}")
    return push_back(git, cache, url, prefix, spec, run, work, out, err, ending)


def claim(git: Git, cache: Path, url: str, ref: str, job: str, name: str, run: int) -> bool:
    """Take the run for this job, or find it cancelled: the job's ref on the remote
    moves from the job's commit to a child saying it started, only if it still
    points at the job's commit (a compare-and-swap on the remote). A submitter that
    cancels a pending run deletes that ref with the same condition, so exactly one
    of the two wins: the run happens, or nothing of it does."""
    sha = git.run("rev-parse", "--verify", f"{job}^{{commit}}", cwd=cache).strip()
    started = git.commit_files({"started": f"{os.uname().nodename} {time.time():.3f}\n".encode()}, [sha],
                               f"envoy: run {run} of worker {name} started on its node", cwd=cache)
    return git.swap_remote_ref(url, ref, started, sha, cwd=cache)


def fetch_job(git: Git, cache: Path, url: str, refspecs: list[str]) -> None:
    """Fetch the job's ref into the node's cache without blobs where the server allows
    it (a partial clone: the first job on a new node does not download the whole
    history's files; checkouts fetch the blobs they need on demand), in full where it
    does not. The cache's remote is named, as a partial clone's promisor must be."""
    if git.version() < PARTIAL_GIT:
        say(f"git {'.'.join(map(str, git.version()))} is older than {'.'.join(map(str, PARTIAL_GIT))}: "
            "fetched in full")
        git.fetch_refs(url, refspecs, cwd=cache)
        return
    git.run("config", "remote.origin.url", url, cwd=cache)
    if not git.fetch_partial("origin", refspecs, cwd=cache):
        say("the remote does not allow partial fetches (uploadpack.allowFilter): fetched in full")


def restore_wip(git: Git, work: Path, wip: Any, start: str) -> None:
    """A resume: the last run's uncommitted work (a commit on the tip it ended at)
    comes back uncommitted in the worktree, as a local worker's would still be there."""
    if not isinstance(wip, str) or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", wip):
        return
    parent = git.run("rev-parse", "--verify", "--quiet", f"{wip}^1^{{commit}}", cwd=work, ok=(0, 1)).strip()
    if parent != start:
        say(f"the last run's uncommitted work ({wip[:12]}) is not restored: it was made on "
            f"{parent[:12] or 'an unknown commit'}, and this run starts at {start[:12]}")
        return
    try:
        restore_uncommitted(git, work, wip)
    except GitError as exc:  # the run goes on from the tip; the work stays on its ref
        say(f"the last run's uncommitted work ({wip[:12]}) could not be restored: {exc}")
        return
    say(f"restored the last run's uncommitted work ({wip[:12]}) in the worktree")


def run_agent(spec: dict[str, Any], run: int, work: Path, url: str, head_ref: str, task: Path, out: Path,
              err: Path) -> dict[str, Any]:
    """Setup (first run), then the agent, each within the timeout and stopped on SIGTERM
    (Ray's stop): the ending, as {"exit_code", "why"} or {"failed": {...}}."""
    from envoy.worker.supervisor import worker_prompt

    stop: list[str] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("stopped"))
    options = spec.get("options") or {}
    timeout = options.get("timeout_s") or 0
    deadline = time.time() + timeout if timeout else None
    env = agent.environment(ENVOY_WORKER=spec["name"], PARALLEL_WORKER_DEPTH="1", ENVOY_PUSH_URL=url,
                            ENVOY_PUSH_REF=head_ref)
    setup = options.get("setup")
    if run == 1 and setup:
        with open(os.devnull, "rb") as nothing, open(err, "ab") as log:
            log.write(f"== setup: {setup}\n".encode())
            log.flush()
            code, why = bounded(["sh", "-c", setup], nothing, log, log, work, env, deadline, stop)
        if why:
            return {"exit_code": None, "why": why}
        if code != 0:
            return {"failed": {"reason": "setup_failed", "exit_code": code,
                               "error": f"setup command exited {code} on the node"}}
    executable = shutil.which(os.environ.get("ENVOY_CLAUDE") or "claude")
    if executable is None:
        return {"failed": {"reason": "agent_missing", "error": "the node has no claude CLI on its PATH "
                           "(install Claude Code there, or set ENVOY_CLAUDE in the node's environment)"}}
    argv = agent.command(
        executable, session_id=spec["session_id"], resume=run > 1,
        system_prompt=worker_prompt({"name": spec["name"], "branch": spec["branch"], "base": spec.get("base"),
                                     "base_sha": spec.get("base_sha"), "path": str(work), "copied": []}),
        permission_mode=options.get("permission_mode"), allowed_tools=options.get("allowed_tools") or [],
        model=options.get("model"), max_turns=options.get("max_turns"), budget_usd=options.get("budget_usd"))
    with open(task, "rb") as stdin, open(out, "ab") as stdout, open(err, "ab") as stderr:
        code, why = bounded(argv, stdin, stdout, stderr, work, env, deadline, stop, Actions(out))
    return {"exit_code": code, "why": why}


class Actions:
    """Says each new action of the agent in the job's log, as a line `action: TEXT`
    (`agent.last_action` of each new complete line of its stream-json), so whoever
    reads the job's log (envoy's runner, Ray's dashboard) sees what it is doing."""
    EVERY = 0.5  # seconds between looks
    LONGEST = 4 << 20  # bytes: a longer line is skipped, not held
    CHUNK = 1 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0  # what earlier runs wrote is not news
        self.partial = b""
        self.looked = 0.0

    def look(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.looked < self.EVERY:
            return
        self.looked = now
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                while True:
                    new = f.read(self.CHUNK)  # a chunk at a time: memory stays bounded whatever was written
                    if not new:
                        return
                    self.offset += len(new)
                    self._said(new)
        except OSError:
            return

    def _said(self, new: bytes) -> None:
        lines = (self.partial + new).split(b"\n")
        self.partial = lines.pop()  # not complete yet
        if len(self.partial) > self.LONGEST:
            self.partial = b"\xff"  # never valid JSON: the rest of that line is dropped with it
        for line in lines:
            text = agent.last_action(line) if line.strip() else None
            if text:
                say(f"action: {text}")


def bounded(argv: list[str], stdin: Any, out: Any, err: Any, cwd: Path, env: dict[str, str],
            deadline: float | None, stop: list[str], actions: Actions | None = None) -> tuple[int | None, str | None]:
    """Run argv in its own process group to its end, its deadline or a stop:
    (exit code, why it was stopped). `actions`: its stdout's, said as they come."""
    process = agent.start(argv, stdin, out, err, str(cwd), env)
    why = None
    while not watcher.has_exited(process.pid):
        why = "stopped" if stop else "timeout" if deadline is not None and time.time() > deadline else None
        if why:
            processes.kill_group(process.pid, lambda: not watcher.has_exited(process.pid), grace=1.0)
            break
        if actions is not None:
            actions.look()
        time.sleep(0.1)
    while not watcher.has_exited(process.pid):
        time.sleep(0.01)
    processes.kill_group(process.pid, None)  # strays left in its group
    code = watcher.reap(process.pid)
    process.returncode = -1 if code is None else code
    if actions is not None:
        actions.look(force=True)
    return code, why


def push_back(git: Git, cache: Path, url: str, prefix: str, spec: dict[str, Any], run: int, work: Path,
              out: Path, err: Path, ending: dict[str, Any]) -> int:
    """Push the branch, uncommitted work (as a commit on a side ref) and the run's record."""
    wip = git.snapshot(work, exclude=[], message=f"envoy: uncommitted work of worker {spec['name']} (run {run})")
    head = git.run("rev-parse", "HEAD", cwd=work).strip()
    files = {"stream.jsonl": out.read_bytes() if out.exists() else b"",
             "err.txt": _tail(err),
             "ending.json": json.dumps({**ending, "wip": wip, "head": head}).encode()}
    found = find_transcript(spec["session_id"])
    if found is not None:
        files["transcript.jsonl"] = found.read_bytes()
    record = git.commit_files(files, [], f"envoy: run {run} of worker {spec['name']}", cwd=cache)
    refspecs = [f"+{head}:{prefix}/head", f"+{record}:{prefix}/run-{run}"]
    if wip:
        refspecs.append(f"+{wip}:{prefix}/wip")
    git.push_refs(url, refspecs, cwd=cache)
    say(f"pushed {head[:12]}" + (f" and uncommitted work as {wip[:12]}" if wip else ""))
    return 0


def _tail(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - ERR_TAIL))
            return f.read()
    except FileNotFoundError:
        return b""
