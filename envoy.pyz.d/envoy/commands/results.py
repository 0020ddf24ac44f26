"""`envoy parallel results`: what each worker did and said."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from envoy import agent, output, usage
from envoy.git import GitError
from envoy.worker import left, lookup, worktree
from envoy.worker.record import Record
from envoy.worker.workspace import Workspace, open_workspace


def collect(ws: Workspace, record: Record, tail: int) -> dict[str, Any]:
    name = record["name"]
    log = ws.state.run_file(name, record.get("run") or 1, "jsonl")
    found = agent.outcome(log)
    result: dict[str, Any] = {
        "name": name, "branch": record["branch"], "base": record["base"], "state": record["state"],
        "reason": record.get("reason"), "error": record.get("error"), "path": record["path"],
        "session_id": record.get("session_id"), "exit_code": record.get("exit_code"),
        "cost_usd": usage.cost(record.get("cost_usd")), "num_turns": usage.turns(record.get("num_turns")),
        "duration_s": lookup.duration(record),
        "result": record["result"] if isinstance(record.get("result"), str) else None,
        "runs": len(record.get("runs") or []),
    }
    result.update(branch_work(ws, record))
    result["permission_denials"] = agent.denials(found["result"])
    result.update(what_it_left(record, log, found["result"]))
    # --tail bounds what is shown of the answer and the transcript together: the
    # answer's last lines first, then the transcript's, N lines in all.
    answer = result["result"]
    budget = tail
    if answer is not None:
        answer_lines = answer.splitlines()
        shown = answer_lines[-budget:] if budget > 0 else []
        if len(shown) < len(answer_lines):
            result["result"] = "\n".join(shown) if shown else None
            result["result_lines"] = len(answer_lines)
        budget -= len(shown)
    lines = agent.transcript(log, final=answer)
    result["transcript"] = lines[-budget:] if budget > 0 else []
    result["transcript_lines"] = len(lines)
    return {k: v for k, v in result.items() if v is not None}


ALLOW_HOW = ("envoy parallel spawn --allowed-tools RULE (repeatable) for a new worker, or RULE in "
             "permissions.allow of the project's .claude/settings.json for every worker spawned after: envoy "
             "passes those on with --allowedTools, as Claude Code itself ignores them in a worker's worktree "
             "(never trusted). A resume keeps the rules its worker was spawned with.")


def what_it_left(record: Record, log: Path, result: dict[str, Any] | None) -> dict[str, Any]:
    """The whole lists behind the record's `attention` (its row keeps counts and a few
    names): every denied call with the rule that would allow it, hook blocks, a failed
    commit. Nothing for a clean worker."""
    seen = left.from_transcript(log, result)
    out: dict[str, Any] = {}
    if record.get("attention"):
        out["attention"] = record["attention"]
        out["left"] = record.get("left")
    if seen["denied"]:
        out["denied"] = [{**call, "rules": left.rules_for(call)} for call in seen["denied"]]
        rules = list(dict.fromkeys(rule for call in out["denied"] for rule in call["rules"]))
        out["allow"] = {"rules": rules, "how": ALLOW_HOW}
    if seen["hook_blocks"]:
        out["hook_blocks"] = seen["hook_blocks"]
    if seen["commit_failed"]:
        out["commit_failed"] = seen["commit_failed"]
    return out


def branch_work(ws: Workspace, record: Record) -> dict[str, Any]:
    """Commits on the worker's branch since its base, the files they change, and
    whether the worktree holds uncommitted work."""
    work: dict[str, Any] = {}
    base = record.get("base_sha")  # None: it never started (queued, or its dependency failed)
    # Resolved once, as diff does: the commits and the files describe the same tip, even
    # if the branch moves (or a cleanup removes it) while this runs.
    tip = ws.git.branch_tip(record["branch"]) if record.get("state") != "queued" and base else None
    if base and tip:
        try:
            work["commits"] = [{"sha": c["sha"][:12], "subject": c["subject"]}
                               for c in ws.git.commits(base, tip)]
            files = ws.git.numstat(base, tip)
            work["files"] = files
            work["diffstat"] = {"files": len(files), "added": sum(f["added"] or 0 for f in files),
                                "deleted": sum(f["deleted"] or 0 for f in files)}
        except GitError as exc:
            work["error"] = exc.message
    if Path(record["path"]).is_dir():
        dirty = worktree.uncommitted(ws.git, record)
        work["uncommitted"] = dirty[:50]
        work["dirty"] = bool(dirty)
    return work


def run(args: argparse.Namespace) -> int:
    if args.tail < 0:
        from envoy.errors import EnvoyError
        raise EnvoyError("invalid_input", "--tail must be 0 or more", "e.g. --tail 50")
    ws = open_workspace()
    records = [lookup.find(ws.state, args.worker)] if args.worker else lookup.all_refreshed(ws.state)
    results = [collect(ws, r, args.tail) for r in records]
    if args.worker and records[0].get("executor") and records[0]["state"] == "running" and records[0].get("job_id"):
        from envoy.executors import remote  # what it does on its node: the job log's action lines

        results[0].update(remote.actions(records[0], args.tail))
    rest = {"total_cost_usd": usage.total_cost(records)}
    if args.worker or args.all or len(records) == 1:  # one worker is no fleet: its results whole
        data: dict[str, Any] = {"results": results, **rest}
    else:  # many workers: what needs someone, in a few KB; --worker or --all for the rest
        from envoy import fleet

        data = fleet.fold(records, results, rest, key="results", shorten=brief, every="envoy parallel results --all",
                          whole_limit=WHOLE)
    output.success(data, render)
    return 0


WHOLE = 16 * 1024  # results of a few workers are shown whole up to this many bytes; more are folded


def brief(record: Record, result: dict[str, Any]) -> dict[str, Any]:
    """A folded row of `results`: where the worker stands and what it left, in counts."""
    from envoy import fleet

    row = fleet.brief(record, result)
    for key in ("commits", "uncommitted", "permission_denials"):
        if result.get(key):
            row[key] = len(result[key])
    if result.get("diffstat", {}).get("files"):
        row["files"] = result["diffstat"]["files"]
    if result.get("result"):
        row["result"] = output.one_line(result["result"], 60)
    return row


def render(data: dict[str, Any]) -> str:
    folded = data.get("folded")
    if not data["results"] and not folded:
        return "no workers"
    blocks = [f"{len(data['results'])} worker(s), total cost ${data['total_cost_usd']:.4f}"]
    if folded:
        from envoy.fleet import folded_line

        blocks[0] += "\n" + folded_line(folded["by_state"], folded["all"])
    for r in data["results"]:
        head = f"== {r['name']} ({r['branch']} <- {r['base']}): {r['state']}"
        if r.get("reason"):
            head += f" ({r['reason']})"
        lines = [head]
        if r.get("cost_usd") or r.get("num_turns"):
            lines.append(f"cost ${r.get('cost_usd', 0):.4f}, {r.get('num_turns', 0)} turns in {r.get('runs', 1)} run(s), "
                         f"{output.duration(r.get('duration_s'))}, session {r.get('session_id')}")
        if r.get("error"):
            lines.append(f"error: {r['error']}")
        for c in r.get("commits", []):
            lines.append(f"commit {c['sha'][:10]} {c['subject']}")
        stat = r.get("diffstat")
        if stat and stat["files"]:
            lines.append(f"{stat['files']} files changed, +{stat['added']} -{stat['deleted']}")
            lines += [f"  {f['path']} (+{f['added']} -{f['deleted']})" for f in r["files"][:30]]
        if r.get("dirty"):
            lines.append(f"uncommitted: {', '.join(r['uncommitted'][:10])}")
        for reason in r.get("attention") or []:
            lines.append(f"! {reason}")
        if r.get("commit_failed"):
            lines.append(f"commit failed: {r['commit_failed']}")
        for d in r.get("denied") or r.get("permission_denials", []):
            lines.append(f"denied: {d['tool']}: {d['input']}" + (f"  (allow: {', '.join(d['rules'])})"
                                                                  if d.get("rules") else ""))
        for d in r.get("hook_blocks") or []:
            lines.append(f"hook blocked: {d['tool']}: {d['input']}")
        if r.get("allow"):
            lines.append(f"to allow: {r['allow']['how']}")
        if r.get("result_lines"):
            shown = len(r["result"].splitlines()) if r.get("result") else 0
            lines.append(f"final answer (last {shown} of its {r['result_lines']} lines; --tail N shows more):")
            lines += ["  " + line for line in (r.get("result") or "").splitlines()]
        elif r.get("result"):
            lines += ["final answer:", *("  " + line for line in r["result"].splitlines())]
        if r.get("actions"):
            lines += [f"actions on its node (last {len(r['actions'])} of {r['action_lines']}):",
                      *("  " + line for line in r["actions"])]
        if r.get("cluster_error"):
            lines.append(f"! {r['cluster_error']['message']}")
        if r.get("transcript"):
            lines += [f"transcript (last {len(r['transcript'])} of {r['transcript_lines']} lines):",
                      *("  " + line for line in r["transcript"])]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
