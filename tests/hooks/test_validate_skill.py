"""Frontmatter checks for skills, agents and commands: a corpus of valid and
invalid files, each problem a single "<what>; fix: <how>" line."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from envoy.hooks import validate_skill
from conftest import ENVOY_SOURCE, REPO_ROOT

SKILL = ".claude/skills/pdf-tools/SKILL.md"
AGENT = ".claude/agents/code-reviewer.md"
COMMAND = ".claude/commands/review.md"
GOOD_SKILL = "---\nname: pdf-tools\ndescription: Fill PDF forms. Use when the user mentions a PDF.\n---\n# PDF\n"
GOOD_AGENT = "---\nname: code-reviewer\ndescription: Reviews diffs. Use after code changes.\n---\nYou review.\n"


def skill(*lines: str, path: str = SKILL) -> list[str]:
    """The problems of a skill whose frontmatter is the given lines."""
    return validate_skill.problems(path, "---\n" + "".join(line + "\n" for line in lines) + "---\nBody.\n")


def only(found: list[str], *words: str) -> str:
    """The single problem, checked to mention every word and to carry a fix."""
    assert len(found) == 1, found
    assert all(word in found[0] for word in words), found[0]
    assert "; fix: " in found[0] and "\n" not in found[0]
    return found[0]


# --- kind_of -----------------------------------------------------------------

@pytest.mark.parametrize("path,kind", [
    (SKILL, "skill"), ("/home/u/.claude/skills/x/SKILL.md", "skill"), ("plugin/skills/x/SKILL.md", "skill"),
    ("C:\\repo\\.claude\\skills\\x\\SKILL.md", "skill"), ("./skills/x/SKILL.md", "skill"),
    (AGENT, "agent"), ("/p/.claude/agents/team/lead.md", "agent"),
    (COMMAND, "command"), ("/home/u/.claude/commands/git/commit.md", "command"),
])
def test_kind_of(path, kind):
    assert validate_skill.kind_of(path) == kind


@pytest.mark.parametrize("path", [
    "README.md", "SKILL.md", "skills/SKILL.md", ".claude/skills/SKILL.md", ".claude/skills/x/skill.md",
    ".claude/skills/x/docs/SKILL.md", ".claude/skills/x/reference.md", ".claude/agents/x.txt", "agents/x.md",
    "docs/.claude/notes/agents.md", ".claude/settings.json", ".claude/agents", "", None, 42,
])
def test_other_paths_are_not_checked(path):
    assert validate_skill.kind_of(path) is None
    assert validate_skill.problems(path, "not even frontmatter") == []


# --- valid files -------------------------------------------------------------

@pytest.mark.parametrize("path,text", [
    (SKILL, GOOD_SKILL),
    (SKILL, "\ufeff" + GOOD_SKILL.replace("\n", "\r\n")),  # BOM and CRLF
    (SKILL, GOOD_SKILL.replace("---\n#", "---  \n#")),  # trailing spaces on the closing line
    (SKILL, "---\nname: pdf-tools\ndescription: >\n  Folded over\n  two lines.\nallowed-tools: [Read, Bash]\n"
            "metadata:\n  owner: me\nlicense: MIT\nversion: 1.0\nuser-invocable: false\nwhen_to_use: forms\n"
            "paths: ['**/*.pdf']\nhooks: {}\n---\n"),
    (SKILL, "---\nname: pdf-tools\ndescription: x\n---\n"),  # no body at all
    ("/abs/plugin/skills/a1-b2/SKILL.md", "---\nname: a1-b2\ndescription: d\nallowed-tools: Read, Grep\n---\n"),
    (AGENT, GOOD_AGENT),
    (AGENT, "---\nname: code-reviewer\ndescription: d\ntools: Read, Grep\nmodel: sonnet\npermissionMode: plan\n"
            "maxTurns: 5\nskills: [pdf-tools]\ncolor: blue\nbackground: true\nisolation: worktree\n---\n"),
    (COMMAND, "Review $ARGUMENTS carefully.\n"),  # no frontmatter is fine for a command
    (COMMAND, ""),
    (COMMAND, "---\ndescription: Review a file\nargument-hint: \"[file]\"\nallowed-tools: Bash(git diff:*)\n"
              "model: haiku\ndisable-model-invocation: true\n---\nReview $ARGUMENTS\n"),
    (COMMAND, "---\n---\nBody\n"),  # empty frontmatter
])
def test_valid_files_have_no_problems(path, text):
    assert validate_skill.problems(path, text) == []


# --- skills: each rule alone -------------------------------------------------

def test_the_brief_example():
    assert validate_skill.problems(".claude/skills/my-skill/SKILL.md", "---\nname: My_Skill\ndescription: d\n---\n")[0] == (
        "name 'My_Skill' may only contain lowercase letters, digits and single hyphens; fix: use 'my-skill'")


@pytest.mark.parametrize("text,words", [
    ("", ["no YAML frontmatter", "name: pdf-tools"]),
    ("# PDF tools\nname: pdf-tools\n", ["no YAML frontmatter"]),
    ("---\nname: pdf-tools\ndescription: d\n", ["never closed", "line 1"]),
    ("---\nname: pdf-tools\ndescription: d\n----\nbody", ["never closed"]),
    ("\n\n---\nname: pdf-tools\ndescription: d\n---\n",
     ["must begin on line 1 but begins on line 3", "delete the 2 blank line(s)"]),
    ("---\n- name: pdf-tools\n---\n", ["a list, not a mapping"]),
    ("---\nname pdf-tools\n---\n", ["the string 'name pdf-tools', not a mapping"]),
])
def test_skill_frontmatter_structure(text, words):
    only(validate_skill.problems(SKILL, text), *words)


def test_empty_frontmatter_reports_both_required_keys():
    for block in ("", "# only a comment\n", "   \n"):
        found = validate_skill.problems(SKILL, f"---\n{block}---\n")
        assert found == ["name is missing; fix: add name: pdf-tools",
                         "description is missing; fix: add description: <what it does and when to use it>"]


@pytest.mark.parametrize("lines,words", [
    (["description: d"], ["name is missing", "add name: pdf-tools"]),
    (["name:", "description: d"], ["name must be a string, not empty", "write name: pdf-tools"]),
    (["name: ''", "description: d"], ["name is empty"]),
    (["name: 123", "description: d"], ["not the number 123", "write name: pdf-tools"]),
    (["name: yes", "description: d"], ["the boolean true", "write name: pdf-tools"]),
    (["name: [pdf-tools]", "description: d"], ["not a list"]),
])
def test_skill_name_presence_and_type(lines, words):
    only(skill(*lines), *words)


def test_duplicate_keys_are_reported():
    found = skill("name: pdf-tools", "description: d", "name: other")
    assert found[0] == "key 'name' appears more than once and YAML keeps only the last; fix: merge them into one"
    assert found[1].startswith("name 'other' differs from its directory")


@pytest.mark.parametrize("directory,name,words", [
    ("pdf-tools", "pdf-forms", ["differs from its directory 'pdf-tools'", "set name: pdf-tools",
                                "or rename the directory to 'pdf-forms'"]),
    ("pdf--tools", "pdf--tools", ["directory 'pdf--tools' may not start or end with a hyphen",
                                  "rename the directory to 'pdf-tools'"]),
])
def test_skill_name_and_directory(directory, name, words):
    only(skill(f"name: {name}", "description: d", path=f".claude/skills/{directory}/SKILL.md")[:1], *words)


@pytest.mark.parametrize("name,words", [
    ("PDF-Tools", ["may only contain lowercase letters, digits and single hyphens", "use 'pdf-tools'"]),
    ("pdf_tools", ["may only contain lowercase letters"]),
    ("pdf tools", ["may only contain lowercase letters"]),
    ("-pdf-tools", ["may not start or end with a hyphen nor contain '--'"]),
    ("pdf-tools-", ["may not start or end with a hyphen"]),
    ("pdf--tools", ["contain '--'"]),
    ("pdf-claude", ["reserved word 'claude'"]),
    ("anthropic-pdf", ["reserved word 'anthropic'"]),
    ("a" * 65, ["is 65 characters long, more than 64"]),
])
def test_skill_name_rules(name, words):
    found = skill(f"name: {name}", "description: d")
    mismatch = found.pop()  # every bad name also differs from the (valid) directory
    assert mismatch.startswith(f"name {name!r} differs from its directory 'pdf-tools'")
    only(found, f"name {name!r}", *words, "fix: use 'pdf-tools'")


def test_xml_tag_in_name():
    found = skill("name: <b>pdf</b>", "description: d", path=".claude/skills/pdf/SKILL.md")
    assert "name '<b>pdf</b>' contains an XML tag; fix: use 'pdf'" in found


@pytest.mark.parametrize("directory,name,suggestion", [
    ("My_Skill", "My_Skill", "my-skill"),
    ("PdfTools", "PdfTools", "pdf-tools"),
    ("claude-pdf", "claude-pdf", "pdf"),
    ("Anthropic Claude", "x", "x"),  # nothing left of the directory: derived from the name
    ("claude", "claude", "<what-it-does>"),  # nothing derivable at all
])
def test_suggestions_for_an_invalid_directory(directory, name, suggestion):
    found = skill(f"name: {name}", "description: d", path=f".claude/skills/{directory}/SKILL.md")
    assert found[0].startswith(f"the skill's directory {directory!r}")
    assert found[0].endswith(f"fix: rename the directory to {suggestion!r} and set name: {suggestion}")


def test_a_name_yaml_would_misread_is_suggested_quoted():
    found = skill("description: d", path=".claude/skills/123/SKILL.md")
    assert found == ['name is missing; fix: add name: "123"']


@pytest.mark.parametrize("lines,words", [
    (["name: pdf-tools"], ["description is missing"]),
    (["name: pdf-tools", "description:"], ["description must be a string, not empty"]),
    (["name: pdf-tools", "description: '  '"], ["description is empty"]),
    (["name: pdf-tools", "description: no"], ["the boolean false", 'quote it: description: "no"']),
    (["name: pdf-tools", "description: 42"], ["the number 42", 'quote it: description: "42"']),
    (["name: pdf-tools", "description: [a, b]"], ["not a list", 'quote it: description: "[a, b]"']),
    (["name: pdf-tools", "description: " + "x" * 1025], ["1025 characters long, more than 1024",
                                                           "shorten it by at least 1 characters"]),
    (["name: pdf-tools", "description: Use for <b>PDFs</b>"], ["'<' or '>'"]),
    (["name: pdf-tools", "description: when size > 5MB"], ["'<' or '>'"]),
])
def test_skill_description_rules(lines, words):
    only(skill(*lines), *words)


def test_description_of_exactly_1024_characters_is_fine():
    assert skill("name: pdf-tools", "description: " + "x" * 1024) == []


@pytest.mark.parametrize("line,words", [
    ("tags: [pdf]", ["unknown key 'tags' (skills do not use it)", "remove it or use one of: name, description"]),
    ("allowed_tools: Read", ["unknown key 'allowed_tools'", "rename it to 'allowed-tools'"]),
    ("allowedTools: Read", ["rename it to 'allowed-tools'"]),
    ("tools: Read", ["rename it to 'allowed-tools'"]),
    ("descripton2: x", ["unknown key 'descripton2'", "rename it to 'description'"]),
    ("Name: pdf-tools", ["unknown key 'Name'", "rename it to 'name'"]),
    ("allowed-tools: 7", ["allowed-tools must be a comma-separated string or a list of strings, not the number 7"]),
    ("allowed-tools: [Read, 3]", ["allowed-tools must be", "not a list", "Read, Grep, Glob"]),
    ("metadata: owner", ["metadata must be a mapping, not the string 'owner'", "indented 'key: value' lines"]),
    ("argument-hint: [file]", ["argument-hint must be a string, not a list", 'quote it: argument-hint: "[file]"']),
    ("user-invocable: 'false'", ["user-invocable must be true or false, not the string 'false'"]),
    ("disable-model-invocation: 1", ["true or false, not the number 1"]),
    ("paths: {a: 1}", ["paths must be a string or a list of strings, not a mapping"]),
    ("hooks: [x]", ["hooks must be a mapping"]),
    ("license: 2024-01-01", ["license must be a string, not a date", 'quote it: license: "2024-01-01"']),
])
def test_skill_keys_and_types(line, words):
    only(skill("name: pdf-tools", "description: d", line), *words)


def test_several_problems_are_reported_together():
    found = validate_skill.problems(".claude/skills/pdf/SKILL.md",
                            "---\nname: Claude_PDF\ndescription: <b>x</b>\nallowed-tools: 5\ncolour: red\n---\n")
    assert found == [
        "name 'Claude_PDF' may only contain lowercase letters, digits and single hyphens; fix: use 'pdf'",
        "name 'Claude_PDF' contains the reserved word 'claude'; fix: use 'pdf'",
        "name 'Claude_PDF' differs from its directory 'pdf' (Claude Code addresses a skill by its directory);"
        " fix: set name: pdf",
        "description contains '<' or '>'; fix: remove them (write 'less than', drop any tags)",
        "allowed-tools must be a comma-separated string or a list of strings, not the number 5;"
        " fix: write it like allowed-tools: Read, Grep, Glob",
        "unknown key 'colour' (skills do not use it); fix: remove it or use one of: " + ", ".join(validate_skill.SKILL_KEYS),
    ]


# --- YAML errors: the parser's line and column, counted in the file ------------

@pytest.mark.parametrize("lines,words", [
    (["name: pdf-tools", "description: Use when: a PDF"],
     ["mapping values are not allowed here at line 3, column 22", 'quote the value: description: "Use when: a PDF"']),
    (["name: pdf-tools", "\tdescription: d"], ["found character '\\t'", "line 3, column 1", "spaces"]),
    (["name:\tpdf-tools", "description: d"], ["line 2, column 6", "spaces"]),
    (["name: pdf-tools", "description: [unclosed"], ["line 3, column 23", 'quote the value: description: "[unclosed"']),
    (["name: pdf-tools", "description: *alias"], ["found undefined alias", 'quote the value']),
    (["name: pdf-tools", "description: !!python/object:os.system x"], ["could not determine a constructor"]),
    (["name: pdf-tools", "description: \x07bell"],
     ["special characters are not allowed at line 3, column 14", "remove that control character"]),
])
def test_yaml_errors_name_line_and_column(lines, words):
    only(skill(*lines), "the frontmatter is not valid YAML", *words)


def test_yaml_error_lines_count_blank_lines_and_crlf():
    text = "\r\n\r\n---\r\nname: pdf-tools\r\ndescription: a: b\r\n---\r\n"
    found = validate_skill.problems(SKILL, text)
    assert len(found) == 2 and "line 5, column 15" in found[1], found


# --- agents ------------------------------------------------------------------

@pytest.mark.parametrize("text,words", [
    ("You review code.\n", ["agent has no YAML frontmatter", "name: code-reviewer"]),
    ("---\ndescription: d\n---\n", ["name is missing (Claude Code silently skips an agent without one)",
                                   "add name: code-reviewer"]),
    ("---\nname: 7\ndescription: d\n---\n", ["name must be a string, not the number 7"]),
    ("---\nname: code-reviewer\n---\n", ["description is missing", "when Claude should delegate"]),
    ("---\nname: code-reviewer\ndescription: ''\n---\n", ["description is empty"]),
    ("---\nname: r\ndescription: d\nallowed-tools: Read\n---\n",
     ["unknown key 'allowed-tools'", "rename it to 'tools'"]),
    ("---\nname: r\ndescription: d\nmax_turns: 3\n---\n", ["rename it to 'maxTurns'"]),
    ("---\nname: r\ndescription: d\ntools: {Read: 1}\n---\n", ["tools must be a comma-separated string or a list"]),
    ("---\nname: r\ndescription: d\npermissionMode: yolo\n---\n",
     ["permissionMode must be one of default, acceptEdits, auto, bypassPermissions, dontAsk, plan, manual", "use one of"]),
    ("---\nname: r\ndescription: d\npermissionMode: accept_edits\n---\n", ["write permissionMode: acceptEdits"]),
    ("---\nname: r\ndescription: d\nmaxTurns: 0\n---\n", ["maxTurns must be a whole number above 0, not the number 0"]),
    ("---\nname: r\ndescription: d\nmaxTurns: '5'\n---\n", ["not the string '5'"]),
    ("---\nname: r\ndescription: d\nmaxTurns: true\n---\n", ["not the boolean true"]),
    ("---\nname: r\ndescription: d\nbackground: maybe\n---\n", ["background must be true or false"]),
    ("---\nname: r\ndescription: d\nhooks: x\n---\n", ["hooks must be a mapping"]),
])
def test_agent_problems(text, words):
    only(validate_skill.problems(AGENT, text), *words)


def test_agent_name_suggestion_comes_from_its_file_name():
    assert validate_skill.problems(".claude/agents/CodeReviewer.md", "---\ndescription: d\n---\n") == [
        "name is missing (Claude Code silently skips an agent without one); fix: add name: code-reviewer"]


# --- commands ----------------------------------------------------------------

@pytest.mark.parametrize("text,words", [
    ("---\nname: review\n---\n", ["unknown key 'name' (commands do not use it)"]),
    ("---\ndescription: d\n", ["never closed"]),
    ("---\n- a\n---\n", ["a list, not a mapping"]),
    ("---\ndescription: [a]\n---\n", ["description must be a string, not a list", 'quote it: description: "[a]"']),
    ("---\nargument-hint: [a] [b]\n---\n", ["not valid YAML", 'quote the value: argument-hint: "[a] [b]"']),
    ("---\nallowed-tools: {Read: 1}\n---\n", ["allowed-tools must be a comma-separated string"]),
    ("---\ndisable-model-invocation: 'no'\n---\n", ["true or false"]),
    ("---\nmodel: 4\n---\n", ["model must be a string, not the number 4", 'quote it: model: "4"']),
    ("\n---\ndescription: d\n---\n", ["begins on line 2"]),
])
def test_command_problems(text, words):
    only(validate_skill.problems(COMMAND, text), *words)


# --- never raise ---------------------------------------------------------------

@pytest.mark.parametrize("text", [None, b"---\nname: pdf-tools\n---\n", "---", "---\n---", "\ufeff", "\r\r\r",
                                  "---\n" + "[" * 5000 + "\n---\n", "---\n&a [*a]\n---\n", "---\n? [a]\n: b\n---\n",
                                  "---\n0: x\nnull: y\n---\n", "---\n" + "a: " * 300 + "\n---\n"])
def test_odd_input_yields_problems_never_exceptions(text):
    for path in (SKILL, AGENT, COMMAND):
        found = validate_skill.problems(path, text)
        assert isinstance(found, list) and all(isinstance(p, str) and "\n" not in p for p in found)


def test_an_internal_error_becomes_a_problem(monkeypatch):
    monkeypatch.setattr(validate_skill, "_split", lambda text: 1 / 0)
    only(validate_skill.problems(SKILL, GOOD_SKILL), "envoy could not check this skill (ZeroDivisionError")


def test_importing_the_module_does_not_import_yaml():
    code = (f"import sys; sys.path[:0] = [{str(ENVOY_SOURCE)!r}, {str(ENVOY_SOURCE / 'vendor')!r}];"
            " import envoy.hooks.validate_skill; print('yaml' in sys.modules, 'difflib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# -- hostile files: the hook answers at once, whatever the file is ------------------

def hook_on(repo, rel: str, limit_memory: bool = True) -> subprocess.CompletedProcess:
    """validate-skill as Claude Code runs it after a Write of `rel`, with 1 GiB of address space
    (a hook that reads /dev/zero to the end runs out of it) and well inside the hook's 30 s."""
    import resource

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    payload = {"hook_event_name": "PostToolUse", "tool_name": "Write", "cwd": str(repo),
               "tool_input": {"file_path": rel}}
    return subprocess.run([sys.executable, str(REPO_ROOT / "envoy.pyz.d"), "hook", "validate-skill"], cwd=repo,
                          input=json.dumps(payload), capture_output=True, text=True, timeout=10,
                          preexec_fn=cap if limit_memory else None)


def block_reason(proc: subprocess.CompletedProcess) -> str:
    """What a blocking validate-skill tells Claude (exit 0 with a block decision: any other
    exit code is "envoy could not run", which never blocks)."""
    assert proc.returncode == 0, proc.stderr
    decision = json.loads(proc.stdout)
    assert decision["decision"] == "block", decision
    return str(decision["reason"])


@pytest.mark.parametrize("rel", [".claude/agents/x.md", ".claude/skills/s/SKILL.md", ".claude/commands/c.md"])
def test_a_skill_file_that_is_a_device_is_reported_not_read(repo, rel):
    path = repo / rel
    path.parent.mkdir(parents=True)
    path.symlink_to("/dev/zero")
    reason = block_reason(hook_on(repo, rel))
    assert "character device" in reason and "regular" in reason


def test_a_skill_file_that_is_a_fifo_does_not_hang_the_hook(repo):
    path = repo / ".claude" / "skills" / "s" / "SKILL.md"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    assert "FIFO" in block_reason(hook_on(repo, ".claude/skills/s/SKILL.md"))


def test_a_huge_skill_file_is_reported_without_reading_it_all(repo):
    path = repo / ".claude" / "agents" / "big.md"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as f:
        f.truncate(8 << 30)  # 8 GiB, sparse
    assert "larger than" in block_reason(hook_on(repo, ".claude/agents/big.md"))
