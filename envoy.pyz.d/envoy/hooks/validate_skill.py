"""Check the frontmatter of Claude Code skills, agents and slash commands: Claude Code validates none
of it, so a bad SKILL.md loads silently and is never used. `envoy hook validate-skill` feeds `problems`
back to Claude. Imported on the hot path of every Write/Edit: `yaml` and `difflib` only inside functions."""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, NamedTuple

from envoy.config import PERMISSION_MODES

NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
XML_TAG = re.compile(r"<[^<>]*>")
ENTRY = re.compile(r"([\w-]+)[ \t]*:[ \t]*([^\s\"\\][^\"\\]*?)[ \t]*")  # `key: value`, value quotable as is
RESERVED = ("anthropic", "claude")
MAX_NAME, MAX_DESCRIPTION = 64, 1024
MAX_FILE_BYTES = 1024 * 1024  # Claude Code puts a skill or agent in context: a bigger one is a mistake
PLACEHOLDER = "<what-it-does>"  # when no valid name can be derived
# Squashed keys Claude writes for the other kind: agents say `tools`, skills and commands `allowed-tools`.
ALIASES = {"allowedtools": "tools", "tools": "allowedtools"}


class Type(NamedTuple):
    check: Callable[[Any], bool]
    expected: str  # "<key> must be <expected>"
    fix: str  # how to write it; "{key}" is replaced by the key
    choices: tuple[str, ...] = ()
    quote: bool = False  # text YAML misread (as a list, number...) is fixed by quoting it


def _strings(value: Any) -> bool:
    return isinstance(value, str) or isinstance(value, list) and all(isinstance(v, str) for v in value)


TEXT = Type(lambda v: isinstance(v, str), "a string", 'write it as a quoted string: {key}: "..."', quote=True)
TOOLS = Type(_strings, "a comma-separated string or a list of strings", "write it like {key}: Read, Grep, Glob")
STRINGS = Type(_strings, "a string or a list of strings", "write it as a string or as '- item' lines under {key}:")
FLAG = Type(lambda v: isinstance(v, bool), "true or false", "write {key}: true or {key}: false")
MAPPING = Type(lambda v: isinstance(v, dict), "a mapping", "write it as indented 'key: value' lines under {key}:")
VERSION = Type(lambda v: type(v) in (str, int, float), "a string", 'write it like {key}: "1.0"', quote=True)
POSITIVE = Type(lambda v: type(v) is int and v > 0, "a whole number above 0", "write it like {key}: 20")
SERVERS = Type(lambda v: isinstance(v, (list, dict)), "a list or a mapping", "list them as '- name' lines under {key}:")
MODE = Type(lambda v: v in PERMISSION_MODES, "one of " + ", ".join(PERMISSION_MODES), "use one of those",
            PERMISSION_MODES)

# None: a required string, checked by its kind's own function.
SKILL_KEYS: dict[str, Type | None] = {
    "name": None, "description": None, "license": TEXT, "allowed-tools": TOOLS, "metadata": MAPPING,
    "compatibility": TEXT, "when_to_use": TEXT, "disallowed-tools": TOOLS, "argument-hint": TEXT,
    "disable-model-invocation": FLAG, "user-invocable": FLAG, "model": TEXT, "effort": TEXT,
    "paths": STRINGS, "hooks": MAPPING, "context": TEXT, "agent": TEXT, "version": VERSION}
AGENT_KEYS: dict[str, Type | None] = {
    "name": None, "description": None, "tools": TOOLS, "disallowedTools": TOOLS, "model": TEXT,
    "permissionMode": MODE, "maxTurns": POSITIVE, "skills": STRINGS, "color": TEXT, "hooks": MAPPING,
    "mcpServers": SERVERS, "memory": TEXT, "background": FLAG, "isolation": TEXT, "effort": TEXT,
    "initialPrompt": TEXT}
COMMAND_KEYS: dict[str, Type | None] = {
    "description": TEXT, "argument-hint": TEXT, "allowed-tools": TOOLS, "model": TEXT,
    "disable-model-invocation": FLAG}


def _parts(path: str) -> list[str]:
    return [part for part in re.split(r"[\\/]+", path) if part not in ("", ".")]


def kind_of(path: str) -> str | None:
    """"skill", "agent", "command" or None, from the path alone (cheap: no I/O, no yaml)."""
    parts = _parts(path) if isinstance(path, str) else []
    if not parts or not parts[-1].endswith(".md"):
        return None
    if parts[-1] == "SKILL.md" and len(parts) >= 3 and parts[-3] == "skills":
        return "skill"
    for i in range(len(parts) - 2):  # .claude/agents/**.md, .claude/commands/**.md
        if parts[i] == ".claude" and parts[i + 1] in ("agents", "commands"):
            return parts[i + 1][:-1]
    return None


def file_problems(path: str, full: str) -> list[str]:
    """`problems` of the file at `full` (named `path` in the messages). A file that is not a
    regular one (a FIFO, a symlink to /dev/zero) or is too large is a problem itself, found
    without reading it; a file gone or unreadable has none to report."""
    from envoy import files

    try:
        text = files.read_text(full, MAX_FILE_BYTES, errors="replace")
    except files.Unreadable as exc:
        return [f"{path} {exc.strerror}, so it is not a usable {kind_of(path)};"
                f" fix: replace it with a regular Markdown file of at most {MAX_FILE_BYTES // 1024} KiB"]
    except OSError:
        return []  # deleted or unreadable meanwhile: nothing to validate
    return problems(path, text)


def problems(path: str, text: str) -> list[str]:
    """Every problem of the file, one line each, in the form
    "<what is wrong>; fix: <how to fix it>", e.g.
    "name 'My_Skill' may only contain lowercase letters, digits and single hyphens; fix: use 'my-skill'".
    [] when the file is fine or is not a skill/agent/command."""
    kind = kind_of(path)
    if kind is None:
        return []
    try:
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        found = _check(kind, _parts(path), text)
    except Exception as exc:  # a validator bug must neither crash the hook nor pass for a valid file
        found = [f"envoy could not check this {kind} ({type(exc).__name__}: {exc}); fix: check its frontmatter by hand"]
    return [" ".join(problem.splitlines()) for problem in found]


def _check(kind: str, parts: list[str], text: str) -> list[str]:
    block, start, found = _split(text)
    if block is None:
        if found or kind == "command":  # unclosed, or a command without frontmatter (which is fine)
            return found
        name = _target(parts[-2], None) if kind == "skill" else _derive(parts[-1][:-3]) or PLACEHOLDER
        return [f"the {kind} has no YAML frontmatter, so Claude Code has no name or description for it;"
                f" fix: start the file with a line '---', then {_line('name', name)} and"
                " description: <what it does and when to use it>, then a line '---'"]
    meta, more = _parse(block, start)
    if meta is None:
        return found + more
    if kind == "command":
        return found + more + _keys(meta, COMMAND_KEYS, kind, block)
    return found + more + (_skill if kind == "skill" else _agent)(meta, parts, block)


def _split(text: str) -> tuple[str | None, int, list[str]]:
    """The frontmatter's YAML (None if absent or unclosed), the index of its opening '---' line,
    and the problems of its delimiters."""
    lines = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if lines[start].rstrip() != "---":
        return None, 0, []
    found = [] if start == 0 else [f"the frontmatter must begin on line 1 but begins on line {start + 1};"
                                   f" fix: delete the {start} blank line(s) before the first '---'"]
    end = next((i for i in range(start + 1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        return None, start, found + [f"the frontmatter opened by '---' on line {start + 1} is never closed;"
                                     " fix: add a line '---' after the last frontmatter key"]
    return "\n".join(lines[start + 1:end]), start, found


def _parse(block: str, start: int) -> tuple[dict[Any, Any] | None, list[str]]:
    """The frontmatter as a mapping (None if unusable) and its YAML-level problems."""
    import yaml

    try:  # safe_load, keeping the node to see duplicate keys
        loader = yaml.SafeLoader(block)  # raises ReaderError on control characters
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        return None, [_yaml_error(exc, start, block)]
    if data is None:  # empty, or only comments: the missing keys get reported
        return {}, []
    if not isinstance(data, dict):
        return None, [f"the frontmatter is {_describe(data)}, not a mapping of keys;"
                      " fix: write one 'key: value' per line, e.g. description: <what it does>"]
    keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)]
    return data, [f"key {key!r} appears more than once and YAML keeps only the last; fix: merge them into one"
                  for key in sorted({key for key in keys if keys.count(key) > 1})]


def _yaml_error(exc: Exception, start: int, block: str) -> str:
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark, offset = getattr(exc, "problem_mark", None), getattr(exc, "position", 0)  # ReaderError: no mark
    row = mark.line if mark else block.count("\n", 0, offset)
    column = mark.column if mark else offset - block.rfind("\n", 0, offset) - 1
    line = (block.split("\n") + [""])[row]
    entry = ENTRY.fullmatch(line)
    if not mark:
        fix = "remove that control character"
    elif "\t" in line[:column + 1]:
        fix = "indent and separate with spaces: YAML does not allow tabs there"
    elif entry:  # the usual cause: a value containing ': ' or starting with [ { * & ! | > % @ `
        fix = f'quote the value: {entry[1]}: "{entry[2]}"'
    else:
        fix = "correct the YAML there, quoting any value that contains ': ' or starts with a special character"
    # start + 2: the row counts from 0 within the block, which begins on the line after '---'
    return f"the frontmatter is not valid YAML: {problem} at line {start + 2 + row}, column {column + 1}; fix: {fix}"


def _skill(meta: dict[Any, Any], parts: list[str], block: str) -> list[str]:
    directory = parts[-2]
    target = _target(directory, meta.get("name"))
    faults = _name_faults(directory)
    found = [f"the skill's directory {directory!r} {' and '.join(faults)}, and Claude Code names the skill"
             f" after it; fix: rename the directory to {target!r} and set {_line('name', target)}"] if faults else []
    found += _require(meta, "name", _line("name", target)) or _skill_name(meta["name"], directory, target)
    found += (_require(meta, "description", "description: <what it does and when to use it>", block)
              or _skill_description(meta["description"]))
    return found + _keys(meta, SKILL_KEYS, "skill", block)


def _skill_name(name: str, directory: str, target: str) -> list[str]:
    faults = _name_faults(name)
    found = [f"name {name!r} {fault}; fix: use {target!r}" for fault in faults]
    if name != directory:
        also = "" if faults else f" or rename the directory to {name!r}"
        found.append(f"name {name!r} differs from its directory {directory!r} (Claude Code addresses a skill by"
                     f" its directory); fix: set {_line('name', target)}{also}")
    return found


def _skill_description(text: str) -> list[str]:
    found = [f"description is {len(text)} characters long, more than {MAX_DESCRIPTION}; fix: shorten it by at"
             f" least {len(text) - MAX_DESCRIPTION} characters"] if len(text) > MAX_DESCRIPTION else []
    if "<" in text or ">" in text:
        found.append("description contains '<' or '>'; fix: remove them (write 'less than', drop any tags)")
    return found


def _agent(meta: dict[Any, Any], parts: list[str], block: str) -> list[str]:
    name = _line("name", _derive(parts[-1][:-3]) or "<agent-name>")
    return (_require(meta, "name", name, why=" (Claude Code silently skips an agent without one)")
            + _require(meta, "description", "description: <when Claude should delegate to this agent>", block)
            + _keys(meta, AGENT_KEYS, "agent", block))


def _require(meta: dict[Any, Any], key: str, example: str, block: str = "", why: str = "") -> list[str]:
    """A required key must be a non-empty string: its problems, [] when it is one."""
    if key not in meta:
        return [f"{key} is missing{why}; fix: add {example}"]
    if not isinstance(meta[key], str):
        return [_wrong_type(key, meta[key], TEXT._replace(fix=f"write {example}"), block)]
    return [] if meta[key].strip() else [f"{key} is empty{why}; fix: write {example}"]


def _keys(meta: dict[Any, Any], known: dict[str, Type | None], kind: str, block: str) -> list[str]:
    """Unknown keys and wrong types, in file order."""
    found = []
    for key, value in meta.items():
        if key not in known:
            close = _close(key, known)
            fix = f"rename it to {close!r}" if close else f"remove it or use one of: {', '.join(known)}"
            found.append(f"unknown key {key!r} ({kind}s do not use it); fix: {fix}")
        elif (expected := known[key]) is not None and not expected.check(value):
            found.append(_wrong_type(key, value, expected, block))
    return found


def _wrong_type(key: str, value: Any, expected: Type, block: str) -> str:
    raw = _raw(block, key) if expected.quote else None
    close = _close(value, expected.choices) if expected.choices else None
    if close:
        fix = f"write {key}: {close}"
    elif raw:
        fix = f'quote it: {key}: "{raw}"'
    else:
        fix = expected.fix.format(key=key)
    return f"{key} must be {expected.expected}, not {_describe(value)}; fix: {fix}"


def _raw(block: str, key: str) -> str | None:
    """The value as written on the key's own line, if it can simply be double-quoted."""
    entries = (ENTRY.fullmatch(line) for line in block.split("\n"))
    return next((entry[2] for entry in entries if entry and entry[1] == key), None)


def _close(word: Any, candidates: Iterable[str]) -> str | None:
    """What the writer meant: the same ignoring case, '-' and '_'; the other kind's key; or a typo."""
    if not isinstance(word, str):
        return None
    def squash(key: str) -> str:
        return re.sub(r"[-_ ]", "", key.lower())

    squashed = {squash(candidate): candidate for candidate in candidates}
    if found := squashed.get(squash(word)) or squashed.get(ALIASES.get(squash(word), "")):
        return found
    import difflib

    near = [c for c in squashed.values() if abs(len(c) - len(word)) <= 2]  # typos, not disallowed/allowed
    return next(iter(difflib.get_close_matches(word, near, n=1, cutoff=0.85)), None)


def _name_faults(name: str) -> list[str]:
    """How a skill name breaks Anthropic's rules, each a phrase to follow the name."""
    faults = ["contains an XML tag"] if XML_TAG.search(name) else []
    if not NAME.fullmatch(name):
        faults.append("may not start or end with a hyphen nor contain '--'" if re.fullmatch(r"[a-z0-9-]+", name)
                      else "may only contain lowercase letters, digits and single hyphens")
    if len(name) > MAX_NAME:
        faults.append(f"is {len(name)} characters long, more than {MAX_NAME}")
    return faults + [f"contains the reserved word '{word}'" for word in RESERVED if word in name.lower()]


def _derive(text: str) -> str:
    """A valid name from an invalid one: 'My_Claude Skill' -> 'my-skill', 'PdfTools' -> 'pdf-tools'."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", XML_TAG.sub("", text)).lower()
    for word in RESERVED:
        text = text.replace(word, "-")
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:MAX_NAME].rstrip("-")


def _target(directory: str, name: Any) -> str:
    """The name to suggest: the directory's when valid (Claude Code uses it), else one derived."""
    if not _name_faults(directory):
        return directory
    return _derive(directory) or (_derive(name) if isinstance(name, str) else "") or PLACEHOLDER


def _line(key: str, value: str) -> str:
    """`key: value`, quoted when YAML would read the value as something else (name: "123")."""
    import yaml

    return f"{key}: {value}" if yaml.safe_load(f"{key}: {value}") == {key: value} else f'{key}: "{value}"'


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()} (YAML reads yes/no/on/off/true/false as booleans)"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return {type(None): "empty", list: "a list", dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")
