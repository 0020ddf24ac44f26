"""`envoy init`: turn a repository into an envoy repository, idempotently.

- envoy.pyz goes where hooks can find it: the pyz this runs from if it is
  inside the repository, else a copy at .claude/envoy.pyz;
- .claude/settings.json gets the two hooks, the env defaults and permission
  rules for envoy's verbs, merged in (every existing key kept, the file's
  indentation kept, nothing written when nothing changes); envoy's hook
  entries an earlier init wrote are replaced by the current ones;
- a copy at .claude/envoy.pyz is a build artefact: it goes into .gitignore
  (appended, once) unless it is tracked or ignored already;
- the /parallel-discovery command and the discovery agents are written,
  unless a file of that name exists and differs (--force replaces it).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any

from envoy import files, output, pyz
from envoy.discovery import roles
from envoy.errors import EnvoyError
from envoy.git import COMMON_DIR_SHELL, Git
from envoy.worker.workspace import open_workspace

HOOKS = (("PostToolUse", "Write|Edit|MultiEdit", "validate-skill"), ("PreToolUse", "Bash", "enforce-limits"),
         ("PostToolUse", "Bash", "worker-ended"))
# The tool calls each hook can concern, as `if` conditions (permission-rule syntax,
# Claude Code >= 2.1.85): a call that matches none starts no process. Each is at least
# as wide as the hook's own first test, so nothing the hook would check slips past:
# enforce-limits looks at nothing without "spawn" in it (Claude Code matches the
# command as the shell parses it, so also inside `sh -c '...'`, `&&` chains, quotes
# and continuation lines); validate-skill at nothing but skills.kind_of's paths.
CONDITIONS = {
    "enforce-limits": ["Bash(*spawn*)"],
    "worker-ended": ["Bash(*parallel spawn*)", "Bash(*parallel resume*)"],
    "validate-skill": [f"{tool}({pattern})" for tool in ("Write", "Edit", "MultiEdit")
                       for pattern in ("**/SKILL.md", "**/.claude/agents/**", "**/.claude/commands/**")],
}
PYZ_COPY = ".claude/envoy.pyz"
ENV_DEFAULTS = {"PARALLEL_MAX_WORKERS": "3", "PARALLEL_WORKER_PREFIX": "claude-worker-"}

DISCOVERY_COMMAND = """\
---
description: Parallel read-only discovery - 2-4 subagents at once (explorer, curator, researcher), findings aggregated
argument-hint: <task description>
---
Run parallel discovery for this task: $ARGUMENTS

1. Analyse the task. Discovery is worth it only when several perspectives help (planning, a codebase
   question that needs structure + patterns + docs, research across sources). For a single-file
   question, or when the task needs edits, say so and answer directly instead.
2. Pick 2 to 4 streams with non-overlapping scopes: `explorer` (structure, where things live),
   `curator` (existing patterns, conventions, what to reuse), `researcher` (external docs and
   references), or a specialist agent from .claude/agents/. Never more than 4.
3. Launch all of them in ONE message with the Agent tool (one call per stream, `subagent_type` set to
   the stream's agent), so they run at the same time. Tell each its scope, the task, and to reply with
   concise findings only: at most 300 words, bullet points, file paths with line numbers, no preamble.
   They are read-only: none may edit files.
4. Aggregate: the findings grouped by topic, each attributed to its stream (e.g. "[explorer] ..."),
   then the conflicts between streams (where they disagree, and which evidence is stronger), then open
   questions. Keep it short: the point is to save your context.
"""


def run(args: argparse.Namespace) -> int:
    ws = open_workspace()
    top = ws.toplevel
    refuse_links(top)
    changed: list[str] = []
    kept: list[str] = []
    rel = install_pyz(top, changed)
    if rel == PYZ_COPY:
        ignore_copy(ws.git, top, changed)
    merge_settings(top / ".claude" / "settings.json", rel, changed)
    files = {".claude/commands/parallel-discovery.md": DISCOVERY_COMMAND}
    files.update({f".claude/agents/{role.name}.md": roles.agent_file(role) for role in roles.ROLES})
    for path, text in files.items():
        write_file(top, path, text, args.force, changed, kept)
    output.success({"pyz": rel, "changed": changed, "kept": kept}, render)
    return 0


# What init writes through rather than replaces: none of it may be a symlink. A cloned
# repository can ship `.claude -> ~/.claude`; init would then write settings, agents,
# commands and envoy.pyz outside the repository.
WRITTEN_THROUGH = (".claude", ".claude/agents", ".claude/commands", ".claude/settings.json", ".gitignore")


def refuse_links(top: Path) -> None:
    """Refuse (`unsafe_path`, nothing written) when a path init writes in is a symlink."""
    for rel in WRITTEN_THROUGH:  # parents first: a link at `.claude` is found before what is under it
        path = top / rel
        if path.is_symlink():
            target = os.readlink(path)
            raise EnvoyError("unsafe_path", f"will not set up envoy: {rel} in {top} is a symlink (to {target}); "
                             "init would write outside the repository through it. Nothing was changed",
                             f"replace {rel} with a real directory or file (rm {rel}; mkdir ...), then retry")


def install_pyz(top: Path, changed: list[str]) -> str:
    """The repository-relative path of the envoy.pyz the hooks will run."""
    running = pyz.running()
    inside = pyz.running_inside(top)
    if inside is not None:
        return inside
    target = top / PYZ_COPY
    with tempfile.TemporaryDirectory(prefix="envoy-init-") as tmp:
        fresh = Path(tmp) / "envoy.pyz"
        if running is not None:
            fresh.write_bytes(running.read_bytes())
        else:
            pyz.write(fresh, _installed_entries(Path(tmp)), epoch=pyz.ZIP_EPOCH)
        if not target.is_file() or target.read_bytes() != fresh.read_bytes():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(fresh, 0o755)  # the permission rules allow `.claude/envoy.pyz parallel ...` run by its path
            os.replace(fresh, target)
            changed.append(f"{PYZ_COPY} (installed)")
        elif target.stat().st_mode & 0o777 != 0o755:  # an older init's copy
            os.chmod(target, 0o755)
            changed.append(f"{PYZ_COPY} (made executable)")
    return PYZ_COPY


def ignore_copy(git: Git, top: Path, changed: list[str]) -> None:
    """Keep the build artefact out of git: workers get a copy from spawn, and a
    clone without one has hooks that say so and let every tool call through. A copy the
    user tracks, or ignores in any way already, is left as it is."""
    if not git.untracked(top, PYZ_COPY) or git.is_ignored(top, PYZ_COPY):
        return
    path = top / ".gitignore"
    try:  # a repository file: read as one (bounded, never a FIFO or a device)
        text = files.read_text(path, errors="replace")
    except FileNotFoundError:
        text = ""
    separator = "\n" if text and not text.endswith("\n") else ""
    with open(path, "a", encoding="utf-8") as f:  # appended: the user's lines stay as they are
        f.write(f"{separator}# envoy: a build artefact; `envoy init` installs it, spawn copies it into workers\n"
                f"/{PYZ_COPY}\n")
    changed.append(f".gitignore (added /{PYZ_COPY})")


def _installed_entries(tmp: Path) -> list[pyz.Entry]:
    """A pyz's contents from a checkout's envoy.pyz.d, or from the installed packages."""
    import envoy

    root = Path(envoy.__file__).resolve().parent.parent
    if (root / "__main__.py").is_file() and (root / "vendor").is_dir():
        return pyz.tree(root)
    import filelock
    import sh
    import yaml

    entries = pyz.tree(Path(envoy.__file__).parent, "envoy/")
    for module in (sh, filelock, yaml):
        entries += pyz.tree(Path(str(module.__file__)).parent, f"vendor/{module.__name__}/")
    main = tmp / "__main__.py"
    main.write_text("import os, sys\nsys.path.insert(0, os.path.join(os.path.dirname(__file__), 'vendor'))\n"
                    "from envoy.entry import run\nrun()\n")  # as envoy.pyz.d/__main__.py
    return [*entries, ("__main__.py", main)]


def merge_settings(path: Path, rel: str, changed: list[str]) -> None:
    try:
        original = files.read_text(path)
    except FileNotFoundError:
        original = ""
    except OSError as exc:
        raise EnvoyError("invalid_config", f"{path} cannot be read: {files.describe(exc)}; init will not rewrite it",
                         "make it a regular JSON file (or remove it), then run envoy init again") from None
    try:
        settings = files.parse_json(original) if original.strip() else {}
    except ValueError as exc:
        raise EnvoyError("invalid_config", f"{path} is not valid JSON ({exc}); init will not rewrite it",
                         "fix the file, then run envoy init again") from None
    _check_shape(path, settings)
    before = json.dumps(settings, sort_keys=True)
    env = settings.setdefault("env", {})
    for key, value in ENV_DEFAULTS.items():
        env.setdefault(key, value)
    allow = settings.setdefault("permissions", {}).setdefault("allow", [])
    for rule in (f"Bash({launcher} {verb}:*)" for verb in ("parallel", "discover")
                 for launcher in (f"python3 {rel}", rel)):
        if rule not in allow:
            allow.append(rule)
    hooks = settings.setdefault("hooks", {})
    for event, matcher, name in HOOKS:
        command = hook_command(rel, name)
        handlers = [{"type": "command", "if": condition, "command": command, "timeout": 30}
                    for condition in CONDITIONS[name]]
        if name == "worker-ended":  # in the background, for as long as a worker may run; exit 2 wakes the model
            handlers = [{**h, "command": rewake_command(rel), "asyncRewake": True, "timeout": REWAKE_TIMEOUT}
                        for h in handlers]
        _ensure_hook(hooks.setdefault(event, []), matcher, name, handlers)
    if json.dumps(settings, sort_keys=True) == before:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(settings, indent=_indent(original), ensure_ascii=False, allow_nan=False) + "\n"
    path.write_text(text, encoding="utf-8")
    changed.append(".claude/settings.json (merged hooks, env, permissions)")


def _check_shape(path: Path, settings: Any) -> None:
    """Refuse a settings file init cannot merge into without breaking it: the keys it
    adds to must have the types Claude Code expects, and every number must survive
    being written back (1e999 reads as infinity, which JSON cannot hold)."""
    def refuse(what: str, expected: str) -> EnvoyError:
        return EnvoyError("invalid_config", f"{path}: {what} is not {expected}; init will not rewrite it",
                          "fix the file (see Claude Code's settings documentation), then run envoy init again")

    if not isinstance(settings, dict):
        raise refuse("the file", "a JSON object")
    for key in ("env", "permissions", "hooks"):
        if not isinstance(settings.get(key, {}), dict):
            raise refuse(key, "an object")
    if not isinstance(settings.get("permissions", {}).get("allow", []), list):
        raise refuse("permissions.allow", "a list")
    for event in {event for event, _, _ in HOOKS}:
        groups = settings.get("hooks", {}).get(event, [])
        if not isinstance(groups, list) or not all(isinstance(group, dict) for group in groups):
            raise refuse(f"hooks.{event}", "a list of objects")
        if not all(isinstance(group.get("hooks", []), list) for group in groups):
            raise refuse(f"hooks.{event}[].hooks", "a list")
    try:
        json.dumps(settings, allow_nan=False)
    except ValueError:
        raise refuse("every number", "one JSON can hold (1e999, NaN and Infinity cannot be written back)") from None


def hook_command(rel: str, name: str) -> str:
    """The shell command (Claude Code runs it with /bin/sh) of hook `name`. Only envoy's
    own decision, JSON on stdout with exit 0, can block a tool call: when envoy cannot
    run (the pyz missing or unreadable, python3 missing, too old, crashing: any exit but
    0) the command says why on stderr and in envoy.log and exits 1, which Claude Code
    shows the user and otherwise ignores. Exit 2 (python3's own for a file it cannot
    open) would block every matching call of every session."""
    # never appended through a symlink planted at envoy/ or envoy.log (a worker's shell can write .git)
    log = (f'd=$({COMMON_DIR_SHELL} 2>/dev/null) && mkdir -p "$d/envoy" && [ ! -L "$d/envoy" ] '
           f'&& [ ! -L "$d/envoy/envoy.log" ] && echo '
           f'"$(date -u +%Y-%m-%dT%H:%M:%SZ) hook {name}: $m; allowed" 2>/dev/null >>"$d/envoy/envoy.log"')
    return (f'f="$CLAUDE_PROJECT_DIR"/{shlex.quote(rel)}; if [ -f "$f" ] && [ -r "$f" ]; then '
            f'python3 -I -S "$f" hook {name} && exit; m="python3 exited $?"; else m="cannot read $f"; fi; '
            f'{log}; echo "envoy: hook {name} skipped ($m); the tool call goes on" >&2; exit 1')


REWAKE_TIMEOUT = 7260  # seconds: the hook's own limit (hooks/worker_ended.py LIMIT), and a minute to tell


def rewake_command(rel: str) -> str:
    """The worker-ended hook's command. It runs in the background (asyncRewake), so it
    never blocks a tool call; exit 2 wakes the model with its stderr. A missing or
    unreadable pyz (python3's own exit 2) is checked first, and every other failure
    ends quietly."""
    return (f'f="$CLAUDE_PROJECT_DIR"/{shlex.quote(rel)}; [ -f "$f" ] && [ -r "$f" ] || exit 0; '
            f'python3 -I -S "$f" hook worker-ended; [ $? -eq 2 ] && exit 2; exit 0')


def _is_envoy_hook(entry: Any, name: str) -> bool:
    command = str(entry.get("command", "")) if isinstance(entry, dict) else ""
    return f"hook {name}" in command and "envoy" in command


def _ensure_hook(groups: list[Any], matcher: str, name: str, handlers: list[dict[str, Any]]) -> None:
    """envoy's handlers of hook `name`, in one group of their own, where an earlier init
    put them (so older entries are upgraded, not duplicated; others' hooks are kept)."""
    kept: list[Any] = []
    where = None
    for group in groups:
        entries = group.get("hooks") if isinstance(group, dict) else None
        if isinstance(entries, list) and any(_is_envoy_hook(entry, name) for entry in entries):
            where = len(kept) if where is None else where
            others = [entry for entry in entries if not _is_envoy_hook(entry, name)]
            if not others:
                continue  # the group was envoy's alone
            group["hooks"] = others
        kept.append(group)
    kept.insert(len(kept) if where is None else where, {"matcher": matcher, "hooks": handlers})
    groups[:] = kept


def _indent(text: str) -> int | str:
    """The indentation the file already uses (2 when it has none)."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and line != stripped:
            whitespace = line[: len(line) - len(stripped)]
            return whitespace if "\t" in whitespace else len(whitespace)
    return 2


def write_file(top: Path, rel: str, text: str, force: bool, changed: list[str], kept: list[str]) -> None:
    path = top / rel
    if os.path.lexists(path):
        try:
            if files.read_text(path, errors="replace") == text:
                return
        except OSError:
            pass  # a FIFO, a device, a huge file: it differs
        if not force:
            kept.append(f"{rel} (exists and differs; left as is, --force replaces it)")
            return
        changed.append(f"{rel} (replaced)")
    else:
        changed.append(f"{rel} (created)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(f".{path.name}.envoy-{os.getpid()}")
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, path)  # not a write through it: the old one may be a FIFO or a link to a device


def render(data: dict[str, Any]) -> str:
    lines = [f"envoy: hooks run {data['pyz']}"]
    lines += [f"  changed {c}" for c in data["changed"]] or ["  nothing to change: already set up"]
    lines += [f"  kept    {k}" for k in data["kept"]]
    return "\n".join(lines)
