"""What a worker left when its run ended, and what of it a person must look at.

`succeeded` says the session ended well; it says nothing of the work. So the end
of every run (finish.py) also records what the worker left: commits on its
branch, uncommitted files in its worktree, the tool calls Claude Code denied it
(the result's `permission_denials` and the transcript's refused tool results),
those a hook blocked, and whether its last `git commit` failed. Anything of these
that needs a person is in `attention`, a short list of reasons; empty: a clean end.

Rows stay small: `left` holds counts, `attention` at most MAX_NAMES names of a
kind; `results` re-reads the transcript for the whole lists.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envoy import agent

if TYPE_CHECKING:
    from envoy.git import Git
    from envoy.worker.record import Record

MAX_NAMES = 3  # of a kind, in `attention`: the rest is counted
REASON_CHARS = 100  # of one reason

# How the CLI words a tool call it refused for want of a permission (the first line of
# the error tool result it hands the model; measured on 2.1.197 and 2.1.332: "sed
# command requires approval (...)", "Claude requested permissions to use Bash, but you
# haven't granted it yet.", "Permission to use X has been denied.", "Output redirection
# to ... was blocked. For security ..."), and a hook's block of one. A command's own
# failure starts "Exit code N" instead. The result's permission_denials lists both
# kinds; a run cut short has no result, only these.
_DENIED = re.compile(r"requires approval|requested permissions? to use|haven't granted it|"
                     r"(?:was|has been) denied|^Permission for this|was blocked\. For security", re.IGNORECASE)
_HOOK = re.compile(r"^\s*(?:Error: )?(?:PreToolUse|PostToolUse|PermissionRequest|UserPromptSubmit)\S*\s+hook")
# A git commit in a Bash command: `git commit`, `git -c x=y commit`, `VAR=x git commit`, as
# a command of its own (first, or after `&&`, `;`, `|`, `(`), not a word in an echo.
_GIT_COMMIT = re.compile(r"(?:^|[;&|(]|\bthen\b|\bdo\b)\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*\s+)*"
                         r"git(?:\s+-[cC]\s+\S+|\s+--?[\w-]+(?:=\S+)?)*\s+commit\b")
# A commit that made nothing because there was nothing to commit: not a failure.
_NOTHING = re.compile(r"nothing to commit|nothing added to commit|no changes added to commit")


def _result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    if isinstance(content, list):
        content = " ".join(b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str))
    return content if isinstance(content, str) else ""


def from_transcript(log: Path, result: dict[str, Any] | None) -> dict[str, Any]:
    """The refused tool calls and the last git commit's failure, read from a run's
    stream-json (`result`: its checked result message, for permission_denials):
    {"denied": [{tool, input}], "hook_blocks": [{tool, input}], "commit_failed": str | None}."""
    calls: dict[str, tuple[str, Any]] = {}  # tool_use id -> (tool, input)
    refused: dict[str, str] = {}  # tool_use id -> the text of its refusal
    order: list[str] = []
    commit: tuple[str, bool, str] | None = None  # the last git commit: (id, failed, what git said)
    commits: set[str] = set()
    for message in agent.messages(log):
        body = message.get("message")
        content = body.get("content") if isinstance(body, dict) else None
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict):
                continue
            ident = block.get("id") if block.get("type") == "tool_use" else block.get("tool_use_id")
            if not isinstance(ident, str):
                continue
            if message.get("type") == "assistant" and block.get("type") == "tool_use":
                name, tool_input = block.get("name"), block.get("input")
                calls[ident] = (name if isinstance(name, str) else "?", tool_input)
                command = tool_input.get("command") if isinstance(tool_input, dict) else None
                if name == "Bash" and isinstance(command, str) and _GIT_COMMIT.search(command):
                    commits.add(ident)
            elif message.get("type") == "user" and block.get("type") == "tool_result":
                text = _result_text(block)
                failed = block.get("is_error") is True
                first = text.lstrip().split("\n", 1)[0][:500]
                if failed and (_DENIED.search(first) or _HOOK.search(first)):
                    if ident not in refused:
                        order.append(ident)
                    refused[ident] = text
                elif ident in commits:
                    commit = (ident, failed and not _NOTHING.search(text), text)
    for denial in (result or {}).get("permission_denials") or []:
        ident = denial.get("tool_use_id")
        ident = ident if isinstance(ident, str) else f"#{len(order)}"
        if ident not in calls:
            calls[ident] = (denial.get("tool_name") if isinstance(denial.get("tool_name"), str) else "?",
                            denial.get("tool_input"))
        if ident not in refused:
            order.append(ident)
            refused[ident] = ""
    denied: list[dict[str, str]] = []
    hooks: list[dict[str, str]] = []
    for ident in order:
        tool, tool_input = calls.get(ident, ("?", None))
        call = {"tool": tool, "input": agent.tool_summary(tool_input)}
        (hooks if _HOOK.search(refused[ident]) else denied).append(call)
    failure = None
    if commit is not None and commit[1]:
        failure = _first_words(commit[2]) or "git commit failed"
    return {"denied": denied, "hook_blocks": hooks, "commit_failed": failure}


def _first_words(text: str) -> str:
    """What git said first, without the CLI's "Exit code N" line."""
    for line in text.splitlines():
        line = line.strip()
        if line and not re.fullmatch(r"(?:Error: )?Exit code \d+", line):
            return line[:REASON_CHARS]
    return ""


def call_name(call: dict[str, str]) -> str:
    """A denied call as a person reads it: Bash(sed -i s/a/b/ README.md)."""
    text = call["input"]
    return f"{call['tool']}({text})" if text else call["tool"]


def _cut(text: str) -> str:
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 1] + "…"


def reasons(kind: str, names: list[str]) -> list[str]:
    """At most MAX_NAMES reasons of a kind, then one that counts the rest."""
    out = [_cut(f"{kind}: {name}") for name in names[:MAX_NAMES]]
    if len(names) > MAX_NAMES:
        out.append(f"{kind}: {len(names) - MAX_NAMES} more")
    return out


def assess(git: Git | None, record: Record, log: Path, result: dict[str, Any] | None,
           uncommitted: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """(`left`, `attention`) of a run that ended: counts of what the worker left, and
    the reasons a person must look at it (empty: a clean end). `git` None: its
    branch and worktree are not looked at (counts None)."""
    seen = from_transcript(log, result)
    commits: int | None = None
    if git is not None and uncommitted is None:
        uncommitted = _uncommitted(git, record)
    if git is not None and record.get("base_sha"):
        try:
            commits = git.commit_count(str(record["base_sha"]), record["branch"])
        except Exception:  # the branch went meanwhile: unknown, not 0
            commits = None
    left: dict[str, Any] = {"commits": commits, "uncommitted": None if uncommitted is None else len(uncommitted),
                            "denied": len(seen["denied"]), "hook_blocks": len(seen["hook_blocks"]),
                            "commit_failed": bool(seen["commit_failed"])}
    attention: list[str] = []
    if seen["commit_failed"]:
        attention.append(_cut(f"commit failed: {seen['commit_failed']}"))
    if uncommitted:
        shown = ", ".join(uncommitted[:MAX_NAMES])
        attention.append(_cut(f"uncommitted: {shown}" + (f" (+{len(uncommitted) - MAX_NAMES} more)"
                                                           if len(uncommitted) > MAX_NAMES else "")))
    attention += reasons("denied", [call_name(c) for c in seen["denied"]])
    attention += reasons("hook blocked", [call_name(c) for c in seen["hook_blocks"]])
    return left, attention


def _uncommitted(git: Git, record: Record) -> list[str] | None:
    from envoy.worker import worktree

    try:
        return worktree.uncommitted(git, record)
    except Exception:  # a worktree half removed by a cleanup meanwhile: unknown
        return None


# -- the rule that would allow a denied call --------------------------------
# Programs whose first argument (or `-m module`) says what runs: the rule names it too.
_WITH_SUBCOMMAND = set("npm npx pnpm yarn cargo go git uv poetry make docker bun dotnet mvn gradle bundle pip pip3".split())
_INTERPRETERS = re.compile(r"python\d*(?:\.\d+)?|node|ruby|perl|bash|sh")


def rules_for(call: dict[str, str]) -> list[str]:
    """The permission rules (Claude Code's syntax) that would allow `call`: for Bash,
    one prefix rule per command of a compound line, e.g. Bash(sed:*),
    Bash(python3 -m pytest:*); for another tool, its name."""
    if call["tool"] != "Bash":
        return [call["tool"]]
    rules: list[str] = []
    for part in re.split(r"&&|\|\||[;|\n]", call["input"]):
        words = [w for w in part.split() if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", w)]  # VAR=x first
        if not words or words[0] in ("cd", "true", ":"):
            continue
        prefix = words[:1]
        if _INTERPRETERS.fullmatch(words[0]) and len(words) > 2 and words[1] == "-m":
            prefix = words[:3]
        elif words[0] in _WITH_SUBCOMMAND and len(words) > 1 and not words[1].startswith("-"):
            prefix = words[:2]
        rule = f"Bash({' '.join(prefix)}:*)"
        if rule not in rules:
            rules.append(rule)
    return rules or [f"Bash({call['input']})"]
