"""`envoy demo`: the main job end to end in a scratch repository, with no account.

Five workers at a cap of two, driven by the scripted stand-in agent of
demo_script.py (or, `--agent claude`, by the real CLI): the cap refuses a
third, the queue takes the rest, two workers collide, `land` merges what
passes the check, `results` shows what a worker did, `cleanup` removes what
landed. Every step is the real verb, run as a user runs it (a subprocess,
JSON), and shown as the command line a user would type. Narrated on a
terminal; one JSON document when piped.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from envoy import agent, output, processes
from envoy.demo_script import CHECK, GATE_VAR, JOBS, PROJECT, REPO_NAME, Job
from envoy.errors import EnvoyError
from envoy.git import Git, environment
from envoy.worker.record import STATES, worker_name

CAP = 2
IDENTITY = ("envoy demo", "demo@envoy.invalid")


class Demo:
    def __init__(self, root: Path, use_claude: bool) -> None:
        self.root, self.repo, self.use_claude = root, root / REPO_NAME, use_claude
        self.narrate = not output.json_mode()
        self.steps: list[dict[str, Any]] = []
        self.gate = root / ".stand-in-may-commit"
        self.envoy = processes.self_command()
        env = {k: v for k, v in environment().items()
               if not k.startswith(("PARALLEL_", "ENVOY_")) and k not in agent.PARENT_SESSION_VARS}
        env["PARALLEL_MAX_WORKERS"] = str(CAP)
        if use_claude:
            if os.environ.get("ENVOY_CLAUDE"):
                env["ENVOY_CLAUDE"] = os.environ["ENVOY_CLAUDE"]
        else:
            env["ENVOY_CLAUDE"] = str(self._standin_script())
            env[GATE_VAR] = str(self.gate)
        self.env = env

    # -- saying what happens ------------------------------------------------
    def say(self, text: str = "", *styles: str) -> None:
        if self.narrate:
            print(output.paint(text, *styles), flush=True)

    def result(self, text: str, ok: bool = True) -> None:
        self.say(f"  {'->' if ok else '!!'} {text}", "green" if ok else "yellow")

    def shown(self, argv: list[str]) -> str:
        """The command line as a user types it (tasks shortened: the full text is above)."""
        short = [a if len(a) <= 48 else a[:45] + "..." for a in argv]
        return "envoy " + shlex.join(short)

    def envoy_json(self, *argv: str, timeout: float | None = 600) -> tuple[int, dict[str, Any]]:
        """Run one verb as a user would; (exit code, its JSON document)."""
        self.say(f"$ {self.shown(list(argv))}", "bold")
        proc = subprocess.run([*self.envoy, *argv, "--json"], cwd=self.repo, env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        try:
            document = json.loads(proc.stdout)
            if not isinstance(document, dict):
                raise ValueError
        except ValueError:
            raise EnvoyError("demo_failed", f"`{self.shown(list(argv))}` printed no JSON document "
                             f"(exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-400:]}",
                             f"explore what it left: {self.root}") from None
        step: dict[str, Any] = {"command": self.shown(list(argv)), "exit_code": proc.returncode,
                                "status": document.get("status")}
        if isinstance(document.get("error"), dict):
            step["error"] = document["error"].get("type")
        self.steps.append(step)
        return proc.returncode, document

    def expect(self, ok: bool, what: str, document: dict[str, Any]) -> None:
        """The stand-in's run is scripted: anything else is a bug in envoy, said as such."""
        if not ok and not self.use_claude:
            error = document.get("error") or {}
            raise EnvoyError("demo_failed", f"the demo expected {what}, but got: "
                             f"{error.get('message') or json.dumps(document)[:400]}",
                             f"please report this; what it left is in {self.root}")

    # -- the scratch repository -------------------------------------------
    def _standin_script(self) -> Path:
        """The stand-in as a real executable: the worker runs it exactly where it would run claude."""
        script = self.root / "bin" / "claude-stand-in"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text("#!/bin/sh\n# envoy demo's scripted stand-in for claude: no model, no account, $0\n"
                          f"exec {shlex.join([*self.envoy, '_standin'])} \"$@\"\n", encoding="utf-8")
        script.chmod(0o755)
        return script

    def make_repository(self) -> None:
        self.repo.mkdir()
        for rel, text in PROJECT.items():
            (self.repo / rel).write_text(text, encoding="utf-8")
        git = Git(self.repo)
        git.init_repository("main", *IDENTITY)
        git.commit_all("A tiny shop: greet() and its test")
        self.say(f"Made {self.repo}: app.py with greet(), its test, one commit on main.")
        self.say(f"  (git identity '{IDENTITY[0]} <{IDENTITY[1]}>' set for this repository only)", "dim")

    # -- the story ----------------------------------------------------------
    def spawn(self, job: Job, *extra: str) -> tuple[int, dict[str, Any]]:
        return self.envoy_json("parallel", "spawn", "--branch", job.branch, "--task", job.task, *extra)

    def run(self) -> dict[str, Any]:
        who = ("the real claude CLI (sessions cost what they cost)" if self.use_claude else
               "envoy's SCRIPTED STAND-IN agent, not Claude: no model, no account, $0 per worker")
        self.say("envoy demo", "bold", "cyan")
        self.say(f"{len(JOBS)} workers at a cap of {CAP} (PARALLEL_MAX_WORKERS={CAP}), driven by {who}.")
        self.say()
        self.make_repository()
        self.say()
        self.say("Two workers start at once, each in its own worktree and branch:", "cyan")
        for job in JOBS[:CAP]:
            code, doc = self.spawn(job)
            self.expect(code == 0, f"{job.branch} to start", doc)
            data = doc.get("data") or {}
            self.result(f"{data.get('name')}: {data.get('state')} in {data.get('path')}")
        self.say()
        self.say("A third one, at the cap, is refused (nothing is created):", "cyan")
        code, doc = self.spawn(JOBS[CAP])
        refused = code != 0 and (doc.get("error") or {}).get("type") == "limit_exceeded"
        self.expect(refused, "a refusal at the cap", doc)
        if refused:
            self.result(f"refused: {doc['error']['message']}", ok=False)
            self.result(f"try: {doc['error'].get('suggestion', '')}", ok=False)
        else:  # a real agent already finished: then it simply started
            self.result(f"{(doc.get('data') or {}).get('name')}: a slot was free already")
        self.say()
        self.say("So the rest go into the queue (first come, first served):", "cyan")
        for job in JOBS[CAP + (0 if refused else 1):]:
            code, doc = self.spawn(job, "--queue")
            self.expect(code == 0, f"{job.branch} to queue", doc)
            data = doc.get("data") or {}
            self.result(f"{data.get('name')}: {data.get('state')}"
                        + (f" (position {data['queue_position']})" if data.get("queue_position") else ""))
        self.say()
        code, doc = self.envoy_json("parallel", "status")
        summary = (doc.get("data") or {}).get("summary") or {}
        self.result(", ".join(f"{n} {s}" for s, n in summary.items() if s in STATES and isinstance(n, int) and n)
                    or "no workers")
        self.gate.touch()  # the stand-ins held their commits until the cap and the queue were shown
        self.say()
        self.say("Wait for all of them (exit 0 only if every worker succeeded):", "cyan")
        code, doc = self.envoy_json("parallel", "wait", timeout=None if self.use_claude else 600)
        self.expect(code == 0, "every worker to succeed", doc)
        workers = [w for w in (doc.get("data") or {}).get("workers") or [] if isinstance(w, dict)]
        ended = ", ".join(f"{w.get('name')} {w.get('state')}" for w in workers)
        self.result(("all succeeded; " if code == 0 else "not all succeeded; ") + f"it waited for {ended}"
                    + (" (the others had ended already)" if len(workers) < len(JOBS) else ""), code == 0)
        self.say()
        self.say("Which of them collide? (dry-run merges, nothing changes)", "cyan")
        code, doc = self.envoy_json("parallel", "conflicts")
        pairs = [p for p in (doc.get("data") or {}).get("conflicts") or [] if isinstance(p, dict)]
        self.expect(bool(pairs), "two workers to conflict", doc)
        for p in pairs:
            self.result(f"{p.get('a')} x {p.get('b')}: conflict in {', '.join(p.get('files') or [])}", ok=False)
        self.say()
        self.say(f"Land them like a merge queue: each merge checked with `{CHECK}` before main moves:", "cyan")
        code, doc = self.envoy_json("parallel", "land", "--check", CHECK, timeout=None if self.use_claude else 600)
        land = doc.get("data") or {}
        landed = [d.get("name") for d in land.get("landed") or [] if isinstance(d, dict)]
        failed = [f for f in land.get("failed") or [] if isinstance(f, dict)]
        for name in landed:
            self.result(f"{name}: landed on main")
        for f in failed:
            files = f" in {', '.join(f['files'])}" if f.get("files") else ""
            self.result(f"{f.get('name')}: did not land ({f.get('reason')}{files})", ok=False)
            said = [line for line in str(f.get("output") or "").splitlines() if "Error" in line]
            if said:
                self.say(f"     the check said: {said[-1].strip()[:100]}", "dim")
        reasons = sorted(str(f.get("reason")) for f in failed)
        self.expect(len(landed) == 3 and reasons == ["check_failed", "conflict"],
                    "3 workers landed, one kept out by a conflict and one by the check", doc)
        self.say()
        shout = worker_name(JOBS[3].branch)
        self.say(f"What did {shout} do? (its answer, commits and files)", "cyan")
        code, doc = self.envoy_json("parallel", "results", "--worker", shout, "--tail", "5")
        for r in (doc.get("data") or {}).get("results") or []:
            if isinstance(r, dict):
                commits = r.get("commits") or []
                self.result(f"answer: {output.one_line(r.get('result'), 70)}")
                self.result(f"{len(commits)} commit(s), files: "
                            + ", ".join(f.get("path", "?") for f in r.get("files") or [] if isinstance(f, dict)))
        self.say()
        self.say("Clean up: what landed goes; unlanded work is never deleted without --force:", "cyan")
        code, doc = self.envoy_json("parallel", "cleanup", "--all")
        cleaned = doc.get("data") or {}
        removed = [str(r.get("name")) for r in cleaned.get("removed") or [] if isinstance(r, dict)]
        kept = [str(r.get("name")) for r in cleaned.get("skipped") or [] if isinstance(r, dict)]
        self.result(f"removed: {', '.join(removed) or 'none'}")
        if kept:
            self.result(f"kept (work not landed): {', '.join(kept)}", ok=False)
        return {"landed": landed, "not_landed": [{"name": f.get("name"), "reason": f.get("reason")} for f in failed],
                "removed": removed, "kept_workers": kept}


def prepare(directory: str | None) -> tuple[Path, bool]:
    """The demo's directory, and whether the demo made it (else: it was empty)."""
    if directory is None:
        return Path(tempfile.mkdtemp(prefix="envoy-demo-")).resolve(), True
    root = Path(directory).expanduser().resolve()
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise EnvoyError("invalid_input", f"--dir {directory}: {root} exists and is not an empty directory",
                         "give a new or empty directory, or leave --dir out for a temporary one")
    made = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    return root, made


def remove(root: Path, made: bool) -> None:
    if made:
        shutil.rmtree(root, ignore_errors=True)
        return
    for child in root.iterdir():  # only what the demo put in the (empty) directory it was given
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    use_claude = args.agent == "claude"
    if use_claude:
        agent.find(os.environ.get("ENVOY_CLAUDE") or "claude")  # a clear agent_missing before anything is made
    root, made = prepare(args.dir)
    demo = Demo(root, use_claude)
    try:
        data = demo.run()
    except BaseException:
        print(f"envoy demo: stopped; what it made is kept in {root}", file=sys.stderr)
        raise
    data = {"agent": "claude" if use_claude else "stand-in", "dir": str(root), "repository": str(demo.repo),
            "kept": bool(args.keep), **data, "steps": demo.steps}
    demo.say()
    if args.keep:
        again = shlex.join(processes.self_command())
        demo.say(f"Kept it to explore: cd {shlex.quote(str(demo.repo))} && {again} parallel status", "bold")
    else:
        remove(root, made)
        demo.say(f"Removed {root} (--keep leaves it to explore).", "dim")
    output.success(data, lambda _: "")
    return 0
