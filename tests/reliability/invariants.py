"""The promises every fault-injection scenario checks, whatever it broke.

A scenario takes a `Snapshot` of the repository before it injects a fault and
after, and asserts the invariants rather than an exit code:

- lose nothing: no commit reachable before (from any ref, worktree HEAD or
  refs/envoy/trash/*) is unreachable after, and uncommitted work in a removed
  worktree is in a trash commit;
- no orphans: every worktree and branch envoy made is claimed by a record
  (a broken record still claims what carries its name);
- no strays: no process of a finished (or removed) worker survives, found by
  ENVOY_WORKER=<name> in /proc/<pid>/environ (scoped to this test's HOME) or by
  being its supervisor or watcher;
- one answer: every verb prints exactly one JSON document, exits 0, 1, 2 or 130
  and never says internal_error;
- exact reports: cleanup reports exactly what it removed, nothing twice.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import ENVOY_SOURCE, git

EXIT_CODES = (0, 1, 2, 3, 129, 130, 143)  # 3: succeeded, some need attention; 129, 143: SIGHUP, SIGTERM
FINISHED = ("succeeded", "failed", "lost", "stopped")


# -- running envoy without trusting it ------------------------------------
@dataclass
class Answer:
    """One envoy run, its output not yet trusted."""
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def document(self) -> dict[str, Any]:
        """The one JSON document the run printed; fails the test if there is not exactly one."""
        where = f"envoy {' '.join(self.args)} (exit {self.code})"
        assert self.code in EXIT_CODES, f"{where}: exit code outside {EXIT_CODES}\n{self.stderr[-2000:]}"
        assert "Traceback" not in self.stderr, f"{where}: a traceback\n{self.stderr[-3000:]}"
        text = self.stdout.strip()
        try:
            document, end = json.JSONDecoder().raw_decode(text)
        except ValueError:
            raise AssertionError(f"{where}: stdout is not a JSON document: {self.stdout[:500]!r}\n"
                                 f"stderr: {self.stderr[-1000:]}") from None
        assert not text[end:].strip(), f"{where}: more than one document: {text[end:end + 300]!r}"
        assert isinstance(document, dict) and document.get("status") in ("success", "error"), (where, document)
        if document["status"] == "error":
            error = document.get("error")
            assert isinstance(error, dict) and isinstance(error.get("type"), str), (where, document)
            assert error["type"] != "internal_error", f"{where}: internal_error: {error}\n{self.stderr[-1500:]}"
            assert self.code != 0, f"{where}: an error document with exit 0"
        return document

    def data(self) -> Any:
        document = self.document()
        # 3: a success whose workers need attention (uncommitted work a test left on purpose)
        assert document["status"] == "success" and self.code in (0, 3), \
            f"envoy {' '.join(self.args)} (exit {self.code}) refused: {document}"
        return document["data"]


def envoy_cmd(*args: str) -> list[str]:
    return [sys.executable, str(ENVOY_SOURCE), *args]


def ask(repo: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
        input: str | None = None) -> Answer:
    proc = subprocess.run(envoy_cmd(*args), cwd=repo, capture_output=True, text=True, input=input,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    return Answer(args, proc.returncode, proc.stdout, proc.stderr)


def launch(repo: Path, *args: str, env: dict[str, str] | None = None, new_session: bool = False) -> subprocess.Popen[str]:
    """envoy in the background, piped (so it answers in JSON)."""
    return subprocess.Popen(envoy_cmd(*args), cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                            start_new_session=new_session)


def answer_of(proc: subprocess.Popen[str], args: tuple[str, ...] = (), timeout: float = 120) -> Answer:
    out, err = proc.communicate(timeout=timeout)
    return Answer(args or tuple(str(a) for a in proc.args[2:]), proc.returncode, out, err)  # type: ignore[index]


# -- what the repository holds ---------------------------------------------
@dataclass
class Worktree:
    path: str
    head: str | None
    branch: str | None


@dataclass
class Snapshot:
    commits: set[str]
    branches: dict[str, str]
    trash: dict[str, str]
    worktrees: list[Worktree]          # linked worktrees only (not the main checkout)
    records: dict[str, Any]            # file stem -> the parsed record, or BROKEN
    dirty: dict[str, dict[str, str]] = field(default_factory=dict)  # worktree path -> {file: blob}


BROKEN = "<broken record>"


def real(path: str | Path) -> str:
    return os.path.realpath(str(path))


def workers_dir(repo: Path) -> Path:
    return repo / ".git" / "envoy" / "workers"


def read_records(repo: Path) -> dict[str, Any]:
    records: dict[str, Any] = {}
    directory = workers_dir(repo)
    for file in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        if file.name.startswith("."):
            continue
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            record = BROKEN
        ok = isinstance(record, dict) and all(isinstance(record.get(k), str) for k in ("name", "branch", "path")) \
            and record["name"] == file.stem  # a name that is not its file's is an edited record
        records[file.stem] = record if ok else BROKEN
    return records


def worktrees(repo: Path) -> list[Worktree]:
    found: list[Worktree] = []
    for block in git(repo, "worktree", "list", "--porcelain").split("\n\n"):
        fields = dict((line.split(" ", 1) + [""])[:2] for line in block.splitlines() if line)
        if "worktree" in fields:
            branch = fields.get("branch", "")
            found.append(Worktree(fields["worktree"], fields.get("HEAD"),
                                  branch[len("refs/heads/"):] if branch.startswith("refs/heads/") else None))
    return found[1:]


def refs(repo: Path, prefix: str) -> dict[str, str]:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return {ref[len(prefix):]: sha for ref, sha in (line.split(" ") for line in out.splitlines())}


def dirty_files(path: str) -> dict[str, str]:
    """Uncommitted files of a worktree and the blob of their content now."""
    proc = subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=all"], cwd=path,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {}
    files: dict[str, str] = {}
    for entry in proc.stdout.split("\0"):
        rel = entry[3:]
        if entry and not entry.startswith("R") and os.path.isfile(os.path.join(path, rel)) \
                and not os.path.islink(os.path.join(path, rel)):
            blob = subprocess.run(["git", "hash-object", "--", rel], cwd=path, capture_output=True, text=True)
            if blob.returncode == 0:
                files[rel] = blob.stdout.strip()
    return files


def snapshot(repo: Path, with_dirty: bool = True) -> Snapshot:
    trees = worktrees(repo)
    records = read_records(repo)
    copied = {real(r["path"]): set(r.get("copied") or []) for r in records.values()
              if r is not BROKEN and isinstance(r.get("copied", []), list)}
    dirty = {}
    if with_dirty:
        for tree in trees:
            if os.path.isdir(tree.path):
                files = {f: b for f, b in dirty_files(tree.path).items() if f not in copied.get(real(tree.path), ())}
                if files:
                    dirty[real(tree.path)] = files
    return Snapshot(commits=set(git(repo, "rev-list", "--all").split()), branches=refs(repo, "refs/heads/"),
                    trash=refs(repo, "refs/envoy/trash/"), worktrees=trees, records=records, dirty=dirty)


# -- the invariants -----------------------------------------------------------
def assert_nothing_lost(repo: Path, before: Snapshot, after: Snapshot | None = None) -> None:
    """No commit reachable before is unreachable now (trash refs count: they are refs),
    and uncommitted work of a worktree that is gone is in a commit a trash ref holds."""
    after = after or snapshot(repo, with_dirty=False)
    lost = before.commits - after.commits
    if lost:
        held = {sha: [b for b, tip in before.branches.items()
                      if subprocess.run(["git", "merge-base", "--is-ancestor", sha, tip], cwd=repo).returncode == 0]
                for sha in sorted(lost)[:5]}
        raise AssertionError(f"{len(lost)} commit(s) reachable before are unreachable now, no trash ref holds "
                             f"them (commit: branches that held it): {held}; trash refs now: {after.trash}")
    still_there = {real(t.path) for t in after.worktrees if os.path.isdir(t.path)}
    for path, files in before.dirty.items():
        if path in still_there:
            continue
        kept: dict[str, set[str]] = {}
        for sha in after.trash.values():
            for line in git(repo, "ls-tree", "-r", sha).splitlines():
                meta, _, name = line.partition("\t")
                kept.setdefault(name, set()).add(meta.split()[2])
        missing = [f for f, blob in files.items() if blob not in kept.get(f, set())]
        assert not missing, f"uncommitted work of removed worktree {path} is in no trash commit: {missing[:5]}"


def claimants(snap: Snapshot) -> tuple[set[str], set[str], set[str]]:
    """(branches, worktree paths) records claim, and the names of broken records."""
    branches, paths, broken = set(), set(), set()
    for stem, record in snap.records.items():
        if record is BROKEN:
            broken.add(stem)
        else:
            branches.add(record["branch"])
            paths.add(real(record["path"]))
    return branches, paths, broken


def assert_no_orphans(repo: Path, user_branches: set[str], snap: Snapshot | None = None) -> None:
    """Every branch (other than the user's own) and every linked worktree is claimed by a
    record; a broken record claims those that carry its file's name."""
    from envoy.worker.record import worker_name

    snap = snap or snapshot(repo, with_dirty=False)
    branches, paths, broken = claimants(snap)
    orphans = []
    for branch in sorted(set(snap.branches) - user_branches - branches):
        if worker_name(branch) not in broken:
            orphans.append(f"branch {branch}")
    for tree in snap.worktrees:
        if real(tree.path) not in paths and not any(real(tree.path).endswith(f"-{b}") or
                                                    os.path.basename(tree.path) == b for b in broken):
            orphans.append(f"worktree {tree.path} ({tree.branch or tree.head})")
    assert not orphans, f"no record claims: {orphans}; records: {sorted(snap.records)}"


def assert_cleanup_exact(before: Snapshot, after: Snapshot, reports: list[dict[str, Any]],
                         others_removed: frozenset[str] = frozenset(), spawned: frozenset[str] = frozenset()) -> None:
    """The cleanups' reports (their `data`) say exactly what disappeared: each removed
    worker once, its record, branch and worktree gone, each trash ref it names new and
    pointing at its sha; nothing else of envoy's vanished. `others_removed`: workers a
    concurrent verb other than cleanup may have removed; `spawned`: workers spawned
    meanwhile (a cleanup may remove them too, once they end)."""
    removed = [r for data in reports for r in data["removed"] if r["name"] not in spawned - set(before.records)]
    names = [r["name"] for r in removed]
    assert len(names) == len(set(names)), f"a removal reported twice: {sorted(names)}"
    gone = set(before.records) - set(after.records)
    assert set(names) <= set(before.records), f"reported removed but not there before: {set(names) - set(before.records)}"
    assert gone - others_removed <= set(names), f"records removed but not reported: {gone - set(names)}"
    still = set(names) & set(after.records)
    assert not still, f"reported removed but the record is still there: {still}"
    reported_branches, reported_paths = set(), set()
    for r in removed:
        record = before.records[r["name"]]
        if record is not BROKEN:
            reported_branches.add(record["branch"])
            reported_paths.add(real(record["path"]))
        elif r.get("path"):  # a broken record's worktree: cleanup names it, there is no record to
            reported_paths.add(real(r["path"]))
    for r in removed:
        record = before.records[r["name"]]
        if record is not BROKEN and record["branch"] in after.branches \
                and before.branches.get(record["branch"]) == after.branches[record["branch"]] \
                and (record.get("worktree_created") or record.get("run")):
            raise AssertionError(f"cleanup says it removed {r['name']} but its branch {record['branch']} is still there")
    for tree in after.worktrees:
        assert real(tree.path) not in reported_paths, f"cleanup says it removed {tree.path}, still a worktree"
    other_paths = {real(before.records[n]["path"]) for n in others_removed
                   if n in before.records and before.records[n] is not BROKEN}
    for tree in before.worktrees:
        if real(tree.path) not in {real(t.path) for t in after.worktrees}:
            assert real(tree.path) in reported_paths | other_paths, f"worktree {tree.path} vanished, unreported"
    new_trash = {f"refs/envoy/trash/{k}": v for k, v in after.trash.items() if k not in before.trash}
    reported_trash = {r["trash_ref"]: r["sha"] for r in removed if r.get("trash_ref")}
    # A cleanup cut short after keeping work notes its trash ref in the record; the next
    # cleanup of that worker reports it (the first never could), though it is not new.
    noted = {rec["trash"]["trash_ref"]: rec["trash"]["sha"] for rec in before.records.values()
             if rec is not BROKEN and isinstance(rec.get("trash"), dict)}
    existing = {f"refs/envoy/trash/{k}": v for k, v in after.trash.items()}
    for ref, sha in reported_trash.items():
        found = new_trash.get(ref) or (existing.get(ref) if noted.get(ref) == sha else None)
        assert found == sha, f"cleanup reports {ref} -> {sha}, the repository has {found}"
    assert set(new_trash) <= set(reported_trash) | {f"refs/envoy/trash/{n}" for n in others_removed}, \
        f"trash refs nobody reported: {set(new_trash) - set(reported_trash)}"
    for data in reports:
        for s in data["skipped"]:  # (another cleanup, run at the same time, may have removed it)
            assert s["name"] in after.records or s["name"] in names, f"cleanup skipped {s['name']}, its record is gone"


# -- processes ----------------------------------------------------------------
def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except (OSError, IndexError):
        return False


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]


def home() -> bytes:
    return f"HOME={os.environ['HOME']}".encode()


def processes_of(names: set[str], supervisors: dict[str, int] | None = None) -> dict[int, str]:
    """Live processes of these workers (of this test): ENVOY_WORKER=<name> in their
    environment (agent, setup command, their children), or a recorded supervisor
    pid whose command line is still envoy's watcher of that worker."""
    wanted = {f"ENVOY_WORKER={n}".encode() for n in names}
    mine = home()
    found = {}
    for pid in pids():
        env = _environ(pid)
        if mine in env and wanted.intersection(env) and _alive(pid):
            found[pid] = cmdline(pid)
    for name, pid in (supervisors or {}).items():
        line = cmdline(pid)
        if name in names and _alive(pid) and ("_watch" in line or "parallel" in line) and name in line:
            found[pid] = line
    return found


def supervisors_of(snap: Snapshot) -> dict[str, int]:
    return {stem: r["supervisor_pid"] for stem, r in snap.records.items()
            if r is not BROKEN and isinstance(r.get("supervisor_pid"), int)}


def assert_no_strays(names: set[str], supervisors: dict[str, int] | None = None, grace: float = 10.0) -> None:
    """No process of these (finished or removed) workers survives, after a grace period."""
    deadline = time.monotonic() + grace
    while True:
        strays = processes_of(names, supervisors)
        if not strays or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not strays, f"processes of finished workers {sorted(names)} still alive after {grace:g}s: {strays}"


def reap_test_processes() -> None:
    """Kill every process this test left (they carry its HOME): a failing scenario must
    not leave sleepers on a shared machine."""
    mine = home()
    for _ in range(3):
        left = [pid for pid in pids() if mine in _environ(pid) and _alive(pid)]
        if not left:
            return
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.1)


# -- all of it ------------------------------------------------------------------
def status(repo: Path) -> list[dict[str, Any]]:
    workers: list[dict[str, Any]] = ask(repo, "parallel", "status").data()["workers"]
    return workers


def assert_verbs_answer(repo: Path) -> dict[str, Any]:
    """status and results answer (success, one document each); returns status' data."""
    view = ask(repo, "parallel", "status").data()
    ask(repo, "parallel", "results").data()
    return view  # type: ignore[no-any-return]


def settle(repo: Path, timeout: float = 30) -> list[dict[str, Any]]:
    """Wait until no worker is starting, running or queued; returns status' workers."""
    deadline = time.monotonic() + timeout
    while True:
        workers = status(repo)
        if all(w["state"] in FINISHED for w in workers) or time.monotonic() > deadline:
            return workers
        time.sleep(0.2)


def assert_invariants(repo: Path, before: Snapshot, user_branches: set[str], *, final_cleanup: bool = True) -> Snapshot:
    """After a fault: nothing lost, no orphans, verbs answer, finished workers leave no
    processes, and `cleanup --all --force` recovers, reporting exactly what it removed,
    leaving no orphans and no strays."""
    view = assert_verbs_answer(repo)  # first: a verb may repair what a killed one left
    now = snapshot(repo)
    assert_nothing_lost(repo, before, now)
    finished = {w["name"] for w in view["workers"] if w.get("state") in FINISHED}
    removed = {stem for stem in before.records if stem not in now.records}
    assert_no_strays(finished | removed, supervisors_of(before))
    assert_no_orphans(repo, user_branches, now)
    if not final_cleanup:
        return now
    answer = ask(repo, "parallel", "cleanup", "--all", "--force")
    data = answer.data()
    after = snapshot(repo, with_dirty=False)
    assert_cleanup_exact(now, after, [data])
    assert_nothing_lost(repo, now, after)
    assert_nothing_lost(repo, before, after)
    assert_no_orphans(repo, user_branches, after)
    assert_no_strays(set(now.records) | finished | removed, {**supervisors_of(before), **supervisors_of(now)})
    return after
