"""envoy parallel land: a merge queue on one machine, with the fake agent and real git."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import ENVOY_SOURCE, git, wait_finished, wait_until


def spawn_done(envoy, branch: str, task: str, **kwargs) -> dict:
    record = envoy("parallel", "spawn", "--branch", branch, "--from", "main", "--task", task, **kwargs).data
    assert wait_finished(envoy, record["name"])["state"] == "succeeded"
    return record


def commit_file(name: str, text: str | None = None) -> str:
    return f"@write {name} {text or name}\n@commit add {name}"


def tip(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref).strip()


def files_at(repo: Path, ref: str = "main") -> set[str]:
    return set(git(repo, "ls-tree", "--name-only", ref).split())


def land_dirs(repo: Path) -> list[Path]:
    root = repo / ".git" / "envoy" / "land"
    return list(root.iterdir()) if root.is_dir() else []


def scratch_worktrees(repo: Path) -> list[str]:
    return [line for line in git(repo, "worktree", "list", "--porcelain").splitlines()
            if line.startswith("worktree ") and "/envoy/land/" in line]


def user_on_feature_with_dirty_work(repo: Path) -> None:
    """The user's checkout: another branch, a staged and an unstaged change."""
    git(repo, "switch", "-qc", "feature")
    (repo / "README").write_text("user's unstaged edit\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")


# -- order and plan -------------------------------------------------------------
def test_dry_run_plans_auto_order_and_changes_nothing(repo, envoy):
    spawn_done(envoy, "clash-1", commit_file("shared.txt", "one"))
    spawn_done(envoy, "clean", commit_file("clean.txt"))
    spawn_done(envoy, "clash-2", commit_file("shared.txt", "two"))
    before = tip(repo)
    plan = envoy("parallel", "land", "--dry-run")
    assert plan.code == 0, plan.stdout
    rows = plan.data["plan"]
    assert [r["name"] for r in rows] == ["clean", "clash-1", "clash-2"]  # the clean one first, then spawn order
    assert rows[1]["conflicts_with"] == ["clash-2"] and rows[0]["conflicts_with"] == []
    fifo = envoy("parallel", "land", "--dry-run", "--order", "fifo").data["plan"]
    assert [r["name"] for r in fifo] == ["clash-1", "clean", "clash-2"]
    assert tip(repo) == before and land_dirs(repo) == []


def test_fifo_is_spawn_order_within_one_second(repo, envoy):
    for name in ("zeta", "alpha", "mu"):  # spawned within a second: created_at alone cannot order them
        envoy("parallel", "spawn", "--branch", name, "--from", "main", "--task", commit_file(f"{name}.txt"))
    assert envoy("parallel", "wait").code == 0
    for file in (repo / ".git/envoy/workers").glob("*.json"):  # as if all three fell in one second
        record = json.loads(file.read_text())
        file.write_text(json.dumps({**record, "created_at": "2026-01-01T00:00:00Z"}))
    plan = envoy("parallel", "land", "--dry-run", "--order", "fifo").data["plan"]
    assert [r["name"] for r in plan] == ["zeta", "alpha", "mu"]


def test_lands_in_order_without_touching_the_users_checkout(repo, envoy):
    for name in ("a", "b", "c"):
        spawn_done(envoy, name, commit_file(f"{name}.txt"))
    user_on_feature_with_dirty_work(repo)
    status_before = git(repo, "status", "--porcelain")
    result = envoy("parallel", "land", "--order", "fifo", "--check", "test -f README")
    assert result.code == 0, result.stdout + result.stderr
    assert [d["name"] for d in result.data["landed"]] == ["a", "b", "c"]
    assert result.data["failed"] == []
    assert {"a.txt", "b.txt", "c.txt", "README"} <= files_at(repo)
    assert tip(repo) == result.data["landed"][-1]["sha"]
    # a fast-forwards main; b, then c, are merged on top
    assert [d["how"] for d in result.data["landed"]] == ["fast-forward", "merge", "merge"]
    subjects = git(repo, "log", "--first-parent", "--format=%s", "main").splitlines()
    assert subjects == ["Merge branch 'c' into main", "Merge branch 'b' into main", "add a.txt", "init"]
    assert git(repo, "status", "--porcelain") == status_before
    assert git(repo, "branch", "--show-current").strip() == "feature"
    assert "landed on main" in result.stderr  # progress on stderr
    # each check runs on the target with every worker ahead of it merged (a mutation survivor)
    assert "c: checking on main + a + b + c" in result.stderr, result.stderr
    assert land_dirs(repo) == [] and scratch_worktrees(repo) == []
    # landed workers count as merged: cleanup needs no --force
    cleaned = envoy("parallel", "cleanup")
    assert sorted(r["name"] for r in cleaned.data["removed"]) == ["a", "b", "c"]


def test_nothing_to_land_again_after_landing(repo, envoy):
    spawn_done(envoy, "a", commit_file("a.txt"))
    assert envoy("parallel", "land").code == 0
    again = envoy("parallel", "land")  # a re-run with everything landed: nothing to do
    assert again.code == 0 and again.data["landed"] == again.data["failed"] == []
    named = envoy("parallel", "land", "--worker", "a")  # named: already in, which counts as landed
    assert named.code == 0 and named.data["landed"][0]["how"] == "already"


def test_a_plain_land_says_which_succeeded_workers_it_did_not_take_and_why(repo, envoy):
    """CI checks out a detached HEAD: a worker spawned there has no branch to land on.
    A plain `land` says so (exit 1), never a silent "nothing to land"."""
    git(repo, "switch", "-q", "--detach")
    detached = envoy("parallel", "spawn", "--branch", "ci-fix", "--task", commit_file("fix.txt")).data
    assert wait_finished(envoy, detached["name"])["state"] == "succeeded"
    git(repo, "switch", "-q", "main")
    spawn_done(envoy, "landed-before", commit_file("before.txt"))
    assert envoy("parallel", "land", "--worker", "landed-before").code == 0
    before = tip(repo)
    result = envoy("parallel", "land")
    assert result.code == 1 and result.error["type"] == "not_landed", result.stdout
    assert "ci-fix" in result.error["message"]
    skipped = {s["name"]: s for s in result.json["data"]["skipped"]}
    assert skipped["ci-fix"]["reason"] == "target_not_a_branch" and "--into" in skipped["ci-fix"]["message"]
    assert skipped["landed-before"]["reason"] == "already_landed"
    assert tip(repo) == before
    assert envoy("parallel", "land", "--dry-run").data["skipped"] == result.json["data"]["skipped"]
    taken = envoy("parallel", "land", "--worker", "ci-fix", "--into", "main")  # as the message says
    assert taken.code == 0 and "fix.txt" in files_at(repo)


# -- checks ---------------------------------------------------------------------
def test_failing_check_keeps_the_target_and_the_others_land(repo, envoy):
    spawn_done(envoy, "good-1", commit_file("good1.txt"))
    spawn_done(envoy, "broken", commit_file("broken.txt"))
    spawn_done(envoy, "good-2", commit_file("good2.txt"))
    broken_tip = tip(repo, "broken")
    check = "if [ -f broken.txt ]; then echo 'FAIL: broken.txt must not exist'; exit 3; fi"
    result = envoy("parallel", "land", "--order", "fifo", "--check", check)
    assert result.code == 1 and result.error["type"] == "not_landed"
    data = result.json["data"]
    assert [d["name"] for d in data["landed"]] == ["good-1", "good-2"]
    (failed,) = data["failed"]
    assert failed["name"] == "broken" and failed["reason"] == "check_failed"
    assert "FAIL: broken.txt must not exist" in failed["output"]
    # no commit the target ever pointed at contains the failing tree
    for sha in git(repo, "rev-list", "--first-parent", "main").split():
        assert "broken.txt" not in git(repo, "ls-tree", "--name-only", sha)
    assert tip(repo, "broken") == broken_tip


def test_conflict_is_reported_with_its_files(repo, envoy):
    spawn_done(envoy, "first", commit_file("same.txt", "first"))
    spawn_done(envoy, "second", commit_file("same.txt", "second"))
    result = envoy("parallel", "land", "--order", "fifo")  # merge only
    assert result.code == 1
    data = result.json["data"]
    assert [d["name"] for d in data["landed"]] == ["first"]
    assert data["failed"][0] == {**data["failed"][0], "name": "second", "reason": "conflict", "files": ["same.txt"]}
    assert (Path(git(repo, "rev-parse", "--show-toplevel").strip()) / "README").exists()


def test_the_check_gets_the_env_file_a_worker_gets(repo, envoy):
    (repo / ".gitignore").write_text(".env\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore .env")
    (repo / ".env").write_text("TOKEN=s3cret\n")
    spawn_done(envoy, "a", commit_file("a.txt"))
    result = envoy("parallel", "land", "--check", "grep -q TOKEN=s3cret .env")
    assert result.code == 0, result.stdout


def test_check_setting_comes_from_parallel_check(repo, envoy):
    spawn_done(envoy, "a", commit_file("a.txt"))
    result = envoy("parallel", "land", env={"PARALLEL_CHECK": "exit 7"})
    assert result.code == 1 and result.json["data"]["failed"][0]["reason"] == "check_failed"
    assert result.json["data"]["check"] == "exit 7"
    assert envoy("parallel", "land", "--no-check", env={"PARALLEL_CHECK": "exit 7"}).code == 0


def sleepers(*seconds: int) -> dict[int, str]:
    """Live `sleep N` processes of this test (its HOME in their environment)."""
    wanted = {f"sleep {n}" for n in seconds}
    home = f"HOME={os.environ['HOME']}".encode()
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode().strip()
            with open(f"/proc/{pid}/environ", "rb") as f:
                ours = home in f.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as f:
                alive = f.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
        except OSError:
            continue
        if line in wanted and ours and alive:
            found[int(pid)] = line
    return found


def test_a_check_past_its_time_limit_fails_and_everything_it_started_is_ended(repo, envoy, tmp_path):
    spawn_done(envoy, "slow", commit_file("slow.txt"))
    started = tmp_path / "started"
    # one in its group, one in a session of its own; the shell itself hangs
    check = f"sleep 301 & setsid sleep 302 & touch {started}; echo working; sleep 300"
    before = tip(repo)
    result = envoy("parallel", "land", "--check", check, "--check-timeout", "1")
    assert result.code == 1 and started.exists(), result.stdout
    failed = result.json["data"]["failed"]
    assert [(f["name"], f["reason"]) for f in failed] == [("slow", "check_failed")]
    assert "working" in failed[0]["output"] and "timed out after 1 s" in failed[0]["output"]
    assert tip(repo) == before and land_dirs(repo) == [] and scratch_worktrees(repo) == []
    assert sleepers(300, 301, 302) == {}


def test_the_check_time_limit_comes_from_parallel_check_timeout(repo, envoy):
    spawn_done(envoy, "slow", commit_file("slow.txt"))
    result = envoy("parallel", "land", "--check", "sleep 300", env={"PARALLEL_CHECK_TIMEOUT": "1"})
    assert result.code == 1 and "timed out after 1 s" in result.json["data"]["failed"][0]["output"]
    assert sleepers(300) == {}


def test_a_passing_checks_background_processes_do_not_outlive_land(repo, envoy):
    spawn_done(envoy, "a", commit_file("a.txt"))
    check = "sleep 303 & (sleep 304 &) ; setsid sleep 305 & exit 0"
    result = envoy("parallel", "land", "--check", check)
    assert result.code == 0, result.stdout
    assert sleepers(303, 304, 305) == {}


# -- speculation ----------------------------------------------------------------
def test_checks_run_at_once_and_only_the_ones_after_a_failure_are_rebuilt(repo, envoy, tmp_path):
    for name in ("a", "b", "c", "d"):
        spawn_done(envoy, name, commit_file(f"{name}.txt"))
    log = tmp_path / "checks.log"
    # Each check logs what it saw when it starts and when it ends; b fails whatever it is merged on.
    seen = "$(ls | grep -v README | tr '\\n' ,)"
    check = f"echo start {seen} >> {log}; sleep 1; echo end {seen} >> {log}; test ! -f b.txt"
    result = envoy("parallel", "land", "--order", "fifo", "--check", check, env={"PARALLEL_MAX_WORKERS": "4"})
    assert result.code == 1
    data = result.json["data"]
    assert [d["name"] for d in data["landed"]] == ["a", "c", "d"]
    assert [f["name"] for f in data["failed"]] == ["b"]
    events = [tuple(line.split()) for line in log.read_text().splitlines()]
    speculated = [("start", "a.txt,"), ("start", "a.txt,b.txt,"), ("start", "a.txt,b.txt,c.txt,"),
                  ("start", "a.txt,b.txt,c.txt,d.txt,")]
    # a, a+b, a+b+c and a+b+c+d checked at once, all started before any ended
    assert sorted(events[:4]) == sorted(speculated)
    # after b failed, c and d (and only they) were rebuilt on a, and checked again
    rebuilt = [e for e in events[4:] if e[0] == "start"]
    assert sorted(rebuilt) == [("start", "a.txt,c.txt,"), ("start", "a.txt,c.txt,d.txt,")]
    assert files_at(repo) == {"README", "a.txt", "c.txt", "d.txt"}


def test_width_is_the_cap(repo, envoy, tmp_path):
    for name in ("a", "b", "c"):
        spawn_done(envoy, name, commit_file(f"{name}.txt"))
    log = tmp_path / "live.log"
    check = f"echo start >> {log}; sleep 0.5; echo end >> {log}"
    assert envoy("parallel", "land", "--check", check, env={"PARALLEL_MAX_WORKERS": "1"}).code == 0
    assert log.read_text().split() == ["start", "end"] * 3  # one at a time


# -- a moving target --------------------------------------------------------------
def test_a_target_that_moves_during_the_check_is_landed_on_anew(repo, envoy, tmp_path):
    spawn_done(envoy, "w", commit_file("w.txt"))
    git(repo, "switch", "-qc", "elsewhere")  # main is checked out nowhere: it moves by compare-and-swap
    mark = tmp_path / "moved"
    move = (f"git -C {repo} update-ref refs/heads/main "
            f"$(git -C {repo} commit-tree -p main -m 'pushed meanwhile' main^{{tree}})")
    check = f"if [ ! -f {mark} ]; then touch {mark}; {move}; fi"
    result = envoy("parallel", "land", "--check", check)
    assert result.code == 0, result.stdout + result.stderr
    log = git(repo, "log", "--format=%s", "main").splitlines()
    assert "pushed meanwhile" in log  # never overwritten
    assert "w.txt" in files_at(repo) and "moved" in result.stderr


def test_checked_out_target_is_fast_forwarded_and_moves_are_retried(repo, envoy, tmp_path):
    spawn_done(envoy, "w", commit_file("w.txt"))
    mark = tmp_path / "moved"
    commit = f"git -C {repo} commit -q --allow-empty -m 'user commit meanwhile'"
    check = f"if [ ! -f {mark} ]; then touch {mark}; {commit}; fi"
    result = envoy("parallel", "land", "--check", check)
    assert result.code == 0, result.stdout + result.stderr
    assert "user commit meanwhile" in git(repo, "log", "--format=%s", "main")
    assert (repo / "w.txt").read_text() == "w.txt\n"  # the checkout was fast-forwarded
    assert git(repo, "status", "--porcelain") == ""


def test_checked_out_target_with_conflicting_local_changes_is_refused(repo, envoy):
    spawn_done(envoy, "w", commit_file("README", "from the worker"))
    (repo / "README").write_text("local edit\n")
    before = tip(repo)
    result = envoy("parallel", "land")
    assert result.code == 1
    failed = result.json["data"]["failed"][0]
    assert failed["reason"] == "target_refused"
    assert tip(repo) == before and (repo / "README").read_text() == "local edit\n"


# -- interruption -----------------------------------------------------------------
def test_kill_9_mid_check_leaves_nothing_and_a_rerun_continues(repo, envoy, tmp_path):
    spawn_done(envoy, "a", commit_file("a.txt"))
    spawn_done(envoy, "b", commit_file("b.txt"))
    before = tip(repo)
    pidfile = tmp_path / "check.pid"
    proc = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "land", "--check",
                             f"echo $$ > {pidfile}; sleep 60"], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30)
    check_pid = int(pidfile.read_text())
    assert scratch_worktrees(repo)
    busy = envoy("parallel", "land", "--check", "true")  # one land at a time
    assert busy.code == 1 and busy.error["type"] == "busy"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_until(lambda: not scratch_worktrees(repo) and not land_dirs(repo), timeout=15)

    def gone() -> bool:
        try:
            os.kill(check_pid, 0)
        except ProcessLookupError:
            return True
        return False
    wait_until(gone, timeout=10)  # the check was stopped too
    assert tip(repo) == before  # no half-moved ref
    again = envoy("parallel", "land", "--check", "true")  # the lock is free; it continues
    assert again.code == 0, again.stdout
    assert sorted(d["name"] for d in again.data["landed"]) == ["a", "b"]


def test_ctrl_c_cleans_up(repo, envoy, tmp_path):
    spawn_done(envoy, "a", commit_file("a.txt"))
    pidfile = tmp_path / "check.pid"
    proc = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), "parallel", "land", "--check",
                             f"echo $$ > {pidfile}; sleep 60"], cwd=repo, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in err
    assert not scratch_worktrees(repo) and not land_dirs(repo)


# -- repair -----------------------------------------------------------------------
def test_repair_resolves_a_conflict_in_the_workers_session(repo, envoy, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"FAKE_CLAUDE_RECORD": str(runs),
           "FAKE_CLAUDE_ON_RESUME": "@run git merge -q main\n@write same.txt merged by the worker\n@commit resolve"}
    first = spawn_done(envoy, "first", commit_file("same.txt", "first"), env=env)
    second = spawn_done(envoy, "second", commit_file("same.txt", "second"), env=env)
    result = envoy("parallel", "land", "--order", "fifo", "--repair", "--check", "test -f same.txt", env=env)
    assert result.code == 0, result.stdout + result.stderr
    data = result.data
    assert [(d["name"], d["repairs"]) for d in data["landed"]] == [("first", 0), ("second", 1)]
    assert data["repairs"][0]["name"] == "second" and data["repairs"][0]["state"] == "succeeded"
    assert data["repair_cost_usd"] > 0
    assert (repo / "same.txt").read_text() == "merged by the worker\n"
    # the repair ran in the worker's own session, told the new target tip and the conflicting file
    tasks = [json.loads(p.read_text()) for p in sorted(runs.iterdir())]
    repair = [t for t in tasks if "--resume" in t["argv"]]
    assert len(repair) == 1 and repair[0]["argv"][repair[0]["argv"].index("--resume") + 1] == second["session_id"]
    assert repair[0]["cwd"] == second["path"]
    allowed = repair[0]["argv"][repair[0]["argv"].index("--allowedTools") + 1:]
    assert "Bash(git merge:*)" in allowed and "Bash(test -f same.txt)" in allowed  # what the task asks it to run
    landed_first = data["landed"][0]["sha"]
    assert "same.txt" in repair[0]["task"] and landed_first in repair[0]["task"]
    assert first["session_id"] not in {t["argv"][t["argv"].index("--resume") + 1] for t in repair}


def test_repairs_wait_for_a_free_slot(repo, envoy):
    env = {"PARALLEL_MAX_WORKERS": "1",
           "FAKE_CLAUDE_ON_RESUME": "@run git merge -q main\n@write same.txt merged by the worker\n@commit resolve"}
    for name in ("first", "second", "third"):
        spawn_done(envoy, name, commit_file("same.txt", name), env=env)
    result = envoy("parallel", "land", "--order", "fifo", "--repair", env=env)
    assert result.code == 0, result.stdout + result.stderr
    assert sorted((d["name"], d["repairs"]) for d in result.data["landed"]) == [
        ("first", 0), ("second", 1), ("third", 1)]
    assert "third: its repair waits for a free slot" in result.stderr
    assert (repo / "same.txt").read_text() == "merged by the worker\n"


def test_repair_of_a_failing_check_is_told_its_output(repo, envoy, tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    env = {"FAKE_CLAUDE_RECORD": str(runs), "FAKE_CLAUDE_ON_RESUME": "@run git rm -q broken.txt\n@commit fix the check"}
    spawn_done(envoy, "good", commit_file("good.txt"), env=env)
    spawn_done(envoy, "broken", commit_file("broken.txt"), env=env)
    check = "if [ -f broken.txt ]; then echo 'FAIL: broken.txt must not exist'; exit 3; fi"
    result = envoy("parallel", "land", "--order", "fifo", "--repair", "--check", check, env=env)
    assert result.code == 0, result.stdout + result.stderr
    assert [(d["name"], d["repairs"]) for d in result.data["landed"]] == [("good", 0), ("broken", 1)]
    assert files_at(repo) == {"README", "good.txt"}
    (repair,) = [json.loads(p.read_text()) for p in runs.iterdir() if "--resume" in json.loads(p.read_text())["argv"]]
    assert "FAIL: broken.txt must not exist" in repair["task"] and check in repair["task"]


def test_repair_that_commits_nothing_is_reported(repo, envoy):
    env = {"FAKE_CLAUDE_ON_RESUME": "@result I could not"}
    spawn_done(envoy, "first", commit_file("same.txt", "first"))
    spawn_done(envoy, "second", commit_file("same.txt", "second"))
    result = envoy("parallel", "land", "--order", "fifo", "--repair-attempts", "1", env=env)
    assert result.code == 1
    failed = result.json["data"]["failed"][0]
    assert failed["name"] == "second" and failed["repairs"] == 1 and "committed nothing" in failed["error"]
    # honest: running --repair again would do the same; it says what to look at and do instead
    suggestion = result.error["suggestion"]
    assert "--repair" not in suggestion
    assert "envoy parallel results --worker second" in suggestion and "resume --worker second" in suggestion


def test_without_repair_a_failure_suggests_repair(repo, envoy):
    spawn_done(envoy, "first", commit_file("same.txt", "first"))
    spawn_done(envoy, "second", commit_file("same.txt", "second"))
    result = envoy("parallel", "land", "--order", "fifo")
    assert result.code == 1 and "--repair" in result.error["suggestion"]


# -- bad input ----------------------------------------------------------------------
def test_landing_a_worker_into_its_own_or_a_live_workers_branch_is_refused(repo, envoy):
    """As merge refuses them: a worker cannot land into itself, nor into the branch
    another worker is still working on."""
    spawn_done(envoy, "done", commit_file("done.txt"))
    envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60")
    before = tip(repo)
    own = envoy("parallel", "land", "--worker", "done", "--into", "done")
    assert own.code == 1 and own.error["type"] == "invalid_input" and "own branch" in own.error["message"], own.stdout
    live = envoy("parallel", "land", "--worker", "done", "--into", "busy")
    assert live.code == 1 and live.error["type"] == "still_running", live.stdout
    assert tip(repo) == before


def test_bad_input_is_refused_and_changes_nothing(repo, envoy):
    spawn_done(envoy, "done", commit_file("done.txt"))
    envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60")
    git(repo, "tag", "v1")
    before = tip(repo)
    cases = [
        (("--worker", "nobody"), "not_found"),
        (("--worker", "busy"), "still_running"),
        (("--worker", "done", "--into", "v1"), "invalid_input"),
        (("--worker", "done", "--into", "no-such-branch"), "invalid_input"),
        (("--worker", "done", "--check", "  "), "invalid_input"),
        (("--worker", "done", "--repair-attempts", "0"), "invalid_input"),
        (("--worker", "done", "--check-timeout", "-1"), "invalid_input"),
    ]
    for args, kind in cases:
        result = envoy("parallel", "land", *args)
        assert result.code == 1 and result.error["type"] == kind, (args, result.stdout)
        assert result.error["suggestion"]
    assert envoy("parallel", "land", "--order", "lifo").code == 2
    nested = envoy("parallel", "land", "--worker", "done", "--repair", env={"ENVOY_WORKER": "other"})
    assert nested.code == 1 and nested.error["type"] == "nesting_blocked"  # a repair would start a worker
    assert tip(repo) == before and land_dirs(repo) == []
    assert "merged_sha" not in json.loads((repo / ".git/envoy/workers/done.json").read_text())


def test_lands_run_directory_and_check_log_are_private(repo, envoy, tmp_path):
    """Check output can hold secrets: land/ and its run directory are 0700 and each
    check's log 0600, as the README says of everything under .git/envoy (they were
    0755 and 0644)."""
    spawn_done(envoy, "feat/a", commit_file("a.txt"))
    modes = tmp_path / "modes"
    check = f'stat -c %a ../.. .. "../$(basename "$PWD").log" > {modes}'
    envoy("parallel", "land", "--check", check).data
    assert modes.read_text().split() == ["700", "700", "600"]
