"""hooks/enforce_limits.py: which shell commands are envoy spawns, and when the cap refuses them
(the hook itself: tests/commands/test_hook.py)."""
from __future__ import annotations

import pytest

from conftest import NOT_SPAWNS, SPAWNS
from envoy.hooks import enforce_limits


@pytest.mark.parametrize("command", SPAWNS)
def test_spawn_commands_are_recognised(command):
    assert enforce_limits.spawn_invocations(command)


@pytest.mark.parametrize("command", NOT_SPAWNS)
def test_other_commands_are_not_spawns(command):
    assert enforce_limits.spawn_invocations(command) == []


@pytest.mark.parametrize("command", [
    "env -u ENVOY_WORKER -u PARALLEL_WORKER_DEPTH envoy parallel spawn --branch x --task y",
    "timeout -s KILL 5 envoy parallel spawn --branch x --task y",
    "env -S 'envoy parallel spawn --branch x --task y'",
    "sudo -u bob envoy parallel spawn --branch x --task y",
    "time -p envoy parallel spawn --branch x --task y",
    "nice -n 5 python3 .claude/envoy.pyz parallel spawn --branch x --task y",
    "xargs -n 1 envoy parallel spawn --branch x --task",
])
def test_a_spawn_behind_a_wrapper_with_options_is_seen(command):
    """A wrapper's option that takes a value (env -u NAME, timeout -s SIG) is not the
    command: the spawn behind it is still recognised (env -u is how an agent would try
    to hide that it is a worker)."""
    from envoy.hooks import enforce_limits

    assert enforce_limits.spawn_invocations(command), command


@pytest.mark.timeout(60)
@pytest.mark.parametrize("shape", ["one-word", "quoted", "double-quoted", "many-words", "sh-c"])
def test_a_huge_command_is_read_in_linear_time(shape):
    """3 MB of command: shlex grew a word a character at a time (quadratic: 1.6 MB took
    26 s, the hook's time-out is 30 s; 3 MB would take minutes). Linear, it takes well
    under a second, and the spawn after the huge part is still seen."""
    size = 3 << 20
    huge = {"one-word": "a" * size, "quoted": "'" + "a b " * (size // 4) + "'",
            "double-quoted": '"' + 'a\\" ' * (size // 4) + '"', "many-words": "a " * (size // 2),
            "sh-c": "\"$(sh -c '" + "x" * size + "')\""}[shape]
    command = f"echo {huge} && envoy parallel spawn --branch x --task y"
    assert enforce_limits.spawn_invocations(command) == [["--branch", "x", "--task", "y"]]
    assert enforce_limits.spawn_invocations(f"echo {huge}") == []


@pytest.mark.parametrize("command", [
    "echo 'a;b' \"c\\\"d\" e\\ f g#h && x", "a&&b||c;d|e&f;;g|&h", "a  'b c'\"d\"e '' \"\"", "echo $(x) `y` > f 2>&1",
    "printf 'multi\nline' ; echo \"q\\\\\\$\"", "x\\", "'", 'a "b', "a\\\nb",
])
def test_the_lexer_splits_as_shlex_does(command):
    """shell_words is shlex(posix, punctuation_chars, whitespace_split) without its
    quadratic growth (and with the shell's comments and newlines, checked below)."""
    import shlex

    def by_shlex(text: str) -> list[str] | str:
        lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, ""
        try:
            return list(lexer)
        except ValueError:
            return "unbalanced"

    def ours(text: str) -> list[str] | str:
        try:
            return enforce_limits.shell_words(text)
        except ValueError:
            return "unbalanced"

    if "\n" not in command:
        assert ours(command) == by_shlex(command)
    try:
        expected: list[str] | str = shlex.split(command)
    except ValueError:
        expected = "unbalanced"
    try:
        assert enforce_limits.shell_words(command, punctuation=False) == expected
    except ValueError:
        assert expected == "unbalanced"


def test_a_comment_or_a_hash_inside_a_word_hides_no_spawn():
    """shlex took `#` inside a word (`a#b`) for a comment to the end of the whole command
    (newlines had been made `;`): the spawn after it went unseen."""
    assert enforce_limits.spawn_invocations("echo a#b && envoy parallel spawn --branch x")
    assert enforce_limits.spawn_invocations("# a comment\nenvoy parallel spawn --branch x")
    assert enforce_limits.spawn_invocations("echo x # envoy parallel spawn --branch x") == []


# -- the cap: refusal() counts held slots as spawn does ---------------------------------
@pytest.fixture
def workers_here(repo):
    """A repository where envoy has recorded workers (so the hook looks at the slots)."""
    from envoy.worker.store import State

    state = State(repo / ".git")
    state.ensure()
    (state.root / "workers").mkdir(exist_ok=True)
    return state


def holding(state, count: int):
    from conftest import hold

    return hold(state, *[f"slot-{i}" for i in range(count)]) if count else None


SPAWN = ["--branch", "x", "--task", "y"]


@pytest.mark.parametrize("cap,held,spawns,refused", [
    (3, 0, 1, False), (3, 2, 1, False), (3, 3, 1, True), (3, 2, 2, True), (3, 1, 2, False), (3, 4, 1, True),
    (1, 0, 1, False), (1, 1, 1, True), (1, 0, 2, True),
])
def test_a_spawn_is_refused_exactly_when_it_would_exceed_the_cap(repo, workers_here, cap, held, spawns, refused):
    """`held` workers run (slot locks held by a live process); the command would start
    `spawns` more. Refused iff held + spawns > cap: the last free slot may be taken."""
    from conftest import kill

    holder = holding(workers_here, held)
    try:
        why = enforce_limits.refusal([SPAWN] * spawns, str(repo), {"PARALLEL_MAX_WORKERS": str(cap)})
    finally:
        if holder:
            kill(holder)
    assert (why is not None) == refused, why
    if refused:
        assert f"{held} of {cap} workers are already running" in why


@pytest.mark.parametrize("held,refused", [(2, False), (3, True)])
def test_the_hooks_cap_is_3_when_nothing_sets_it(repo, workers_here, held, refused):
    from conftest import kill

    holder = holding(workers_here, held)
    try:
        why = enforce_limits.refusal([SPAWN], str(repo), {})
    finally:
        kill(holder)
    assert (why is not None) == refused, why


def test_queued_spawns_are_never_refused_for_the_cap(repo, workers_here):
    from conftest import kill

    holder = holding(workers_here, 3)
    try:
        assert enforce_limits.refusal([[*SPAWN, "--queue"]], str(repo), {"PARALLEL_MAX_WORKERS": "3"}) is None
        assert enforce_limits.refusal([[*SPAWN, "--queue"], SPAWN], str(repo), {"PARALLEL_MAX_WORKERS": "3"})
    finally:
        kill(holder)


# Found by the mutation run (tests/mutation/run enforce_limits).
def test_the_spawns_own_arguments_are_returned():
    assert enforce_limits.spawn_invocations("envoy --json parallel spawn --branch x --task y") == [
        ["--branch", "x", "--task", "y"]]


def test_a_shell_script_after_options_is_read():
    assert enforce_limits.spawn_invocations("bash -x -c 'envoy parallel spawn --branch x --task y'") == [
        ["--branch", "x", "--task", "y"]]


def test_any_run_of_separator_characters_separates():
    assert enforce_limits.spawn_invocations("true ;& envoy parallel spawn --branch x --task y")


@pytest.mark.parametrize("command", ["timeout -s", "env -u", "nice -n"])
def test_a_wrapper_whose_option_lacks_its_value_is_no_spawn(command):
    assert enforce_limits.spawn_invocations(command) == []


def test_outside_a_repository_nothing_is_refused_for_the_cap(tmp_path):
    assert enforce_limits.refusal([SPAWN], str(tmp_path), {"PARALLEL_MAX_WORKERS": "1"}) is None


@pytest.mark.parametrize("command", [
    "bash -x -c 'envoy parallel spawn --branch x --task y'",
    "sh -ec 'envoy parallel spawn --branch x --task y'",
    "bash -o pipefail -c 'envoy parallel spawn --branch x --task y'",
    "bash -c -- 'envoy parallel spawn --branch x --task y'",
])
def test_a_shell_running_a_spawn_with_options_before_its_text_is_seen(command):
    """Options before the command text did hide the spawn from the hook (found by the
    mutation run): the text is the first argument after the options, -c among them."""
    assert enforce_limits.spawn_invocations(command) == [["--branch", "x", "--task", "y"]]


@pytest.mark.parametrize("command", ["bash script.sh -c", "sh -x bin/envoy-wrapper", "bash -c", "bash -o"])
def test_a_shell_running_a_script_file_is_not_read_as_text(command):
    assert enforce_limits.spawn_invocations(command) == []
