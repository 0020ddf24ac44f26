"""The discovery roles: who looks at what, with which read-only tools.

Shared by `envoy discover` (one headless session per role) and `envoy init`
(which writes them as .claude/agents/<role>.md for /parallel-discovery).
Pure data and small functions: `yaml` is imported only to read a
specialist agent's frontmatter.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from envoy import files
from envoy.errors import EnvoyError
from envoy.hooks.validate_skill import MAX_FILE_BYTES

READ_ONLY_TOOLS = ("Read", "Grep", "Glob")
WEB_TOOLS = ("WebSearch", "WebFetch")
# Everything a discovery stream may ever hold: none of these can change a file.
ALLOWED_TOOLS = READ_ONLY_TOOLS + WEB_TOOLS
DEFAULT_MAX_WORDS = 300
AGENTS_DIR = Path(".claude") / "agents"


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    tools: tuple[str, ...]
    scope: str  # what this stream covers, and what it leaves to the others
    source: str = "built-in"  # or the agent file it was read from


ROLES = (
    Role("explorer",
         "Read-only discovery stream for codebase structure: where things live, entry points, how the pieces "
         "connect. Use it in parallel discovery for the map of the code.",
         READ_ONLY_TOOLS,
         "Map the codebase as it bears on the task: where the relevant code lives, the entry points, the call "
         "paths and module boundaries, the configuration and build files involved. Report locations as "
         "path:line and how the pieces connect. Leave conventions and what to reuse to the curator, and "
         "anything outside the repository to the researcher."),
    Role("curator",
         "Read-only discovery stream for existing patterns and conventions: the skills, docs and tests that "
         "apply, and what to reuse instead of writing anew.",
         READ_ONLY_TOOLS,
         "Find what already exists that the task should follow or reuse: the conventions and patterns of "
         "similar code, helpers and utilities to reuse, project skills (.claude/skills), agents, docs and "
         "READMEs that apply, and the tests that cover the area or show how it is tested. Leave the overall "
         "map of the code to the explorer, and external sources to the researcher."),
    Role("researcher",
         "Read-only discovery stream for external knowledge: official docs and references, library APIs, "
         "version-specific behaviour, known issues. The only discovery stream with web access.",
         READ_ONLY_TOOLS + WEB_TOOLS,
         "Consult sources outside the repository: the official documentation of the libraries and tools the "
         "task involves, their APIs and version-specific behaviour, known issues, pitfalls and references. "
         "Read local files only to learn which libraries and versions are in use. Leave the map of the code "
         "to the explorer and its conventions to the curator."),
)
BUILT_IN = {role.name: role for role in ROLES}


def agent_body(role: Role, max_words: int = DEFAULT_MAX_WORDS) -> str:
    """What the role is told as an in-session subagent of /parallel-discovery."""
    return (f"You are the {role.name} stream of a parallel discovery: several read-only agents look at one "
            f"task at once, each from its own angle, and the coordinator merges what they find.\n\n"
            f"Your scope: {role.scope}\n\n"
            "You are read-only: never edit, create or delete files, and never run commands.\n"
            f"Reply with concise findings only: at most {max_words} words, bullet points, file paths with line "
            "numbers, no preamble. End with open questions, if any.\n")


def agent_file(role: Role) -> str:
    """The role as a Claude Code agent file (.claude/agents/<name>.md)."""
    return (f"---\nname: {role.name}\ndescription: {_yaml_string(role.description)}\n"
            f"tools: {', '.join(role.tools)}\n---\n{agent_body(role)}")


def _yaml_string(text: str) -> str:
    """A plain YAML scalar when that reads back as the same text, else a quoted one
    (a JSON string is valid YAML)."""
    plain = re.fullmatch(r"[A-Za-z0-9(][^:#\n]*", text) and not text.rstrip().endswith(":")
    return text if plain else json.dumps(text, ensure_ascii=False)


def agent_names(toplevel: Path) -> list[str]:
    """Names of the project's agent files, for telling the user what exists."""
    directory = toplevel / AGENTS_DIR
    return sorted(p.stem for p in directory.glob("*.md")) if directory.is_dir() else []


def load_agent(toplevel: Path, name: str) -> Role | None:
    """A specialist from .claude/agents/<name>.md as a discovery role (None: no such file).

    Its tools are cut down to the read-only set: a specialist that may write
    elsewhere still only reads here. No `tools` key means all tools in Claude
    Code, so here: all read-only ones."""
    path = toplevel / AGENTS_DIR / f"{name}.md"
    if not os.path.lexists(path):
        return None
    rel = (AGENTS_DIR / path.name).as_posix()
    try:
        meta, body = read_frontmatter(files.read_text(path, MAX_FILE_BYTES))
    except FileNotFoundError:  # a dangling symlink, or removed meanwhile
        return None
    except OSError as exc:
        raise EnvoyError("invalid_input", f"cannot read agent {rel}: {files.describe(exc)}",
                         f"make {rel} a regular Markdown file, or drop {name!r} from --roles") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvoyError("invalid_input", f"cannot read agent {rel}: {exc}",
                         f"fix its frontmatter (---, name, description, tools, ---) or drop {name!r} from --roles"
                         ) from None
    wanted = meta.get("tools")
    if wanted is None:
        listed: list[str] = list(ALLOWED_TOOLS)
    elif isinstance(wanted, str):
        listed = [t.strip() for t in wanted.split(",") if t.strip()]
    elif isinstance(wanted, list):
        listed = [str(t).strip() for t in wanted]
    else:
        raise EnvoyError("invalid_input", f"agent {rel}: 'tools' is neither a list nor a comma-separated string",
                         "write it as: tools: Read, Grep, Glob")
    tools = tuple(t for t in ALLOWED_TOOLS if t in listed)
    if not tools:
        raise EnvoyError("invalid_input",
                         f"agent {rel} has no read-only tool (its tools: {', '.join(listed) or 'none'}), "
                         "so it cannot look at anything in a discovery",
                         f"give it some of {', '.join(ALLOWED_TOOLS)}, or drop {name!r} from --roles")
    description = str(meta.get("description") or "").strip()
    scope = body.strip() or description
    if not scope:
        raise EnvoyError("invalid_input", f"agent {rel} says nothing about its scope (no description, no body)",
                         "describe what it looks at, in its description or body")
    return Role(str(meta.get("name") or name), description, tools, scope, source=rel)


def read_frontmatter(text: str) -> tuple[dict[str, object], str]:
    """(frontmatter mapping, body) of a Markdown file; ({}, text) without frontmatter.
    ValueError when the frontmatter is unclosed or not a YAML mapping."""
    lines = text.replace("\r\n", "\n").split("\n")
    if not lines or lines[0].rstrip() != "---":
        return {}, text
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].rstrip() == "---")
    except StopIteration:
        raise ValueError("the frontmatter opened by '---' is never closed") from None
    import yaml

    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"bad YAML in the frontmatter ({' '.join(str(exc).split())})") from None
    if not isinstance(meta, dict):
        raise ValueError("the frontmatter is not a mapping of keys")
    return meta, "\n".join(lines[end + 1:])
