"""envoy completion bash|zsh: verbs, options, choices, and live worker names."""
from __future__ import annotations

import shutil
import subprocess

from conftest import spawn_done


def complete(script: str, line: str, cwd) -> list[str]:
    """What bash offers at the end of `line` (a trailing space: a new word)."""
    words = line.split(" ")
    program = (script + "\nCOMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + ")\n"
               f"COMP_CWORD={len(words) - 1}\n_envoy\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completes_verbs_options_choices_and_live_worker_names(repo, envoy):
    script = envoy("completion", "bash").stdout
    assert "complete -F _envoy envoy" in script
    assert complete(script, "envoy ", repo)[:2] == ["parallel", "hook"]
    assert complete(script, "envoy parallel sta", repo) == ["status"]
    assert complete(script, "envoy parallel st", repo) == ["status", "stop"]
    assert complete(script, "envoy parallel spawn --br", repo) == ["--branch"]
    assert complete(script, "envoy parallel land --order ", repo) == ["auto", "fifo"]
    assert complete(script, "envoy demo --", repo) == ["--help", "--json", "--text", "--agent", "--dir", "--keep"]
    assert complete(script, "envoy parallel results --worker ", repo) == []
    spawn_done(envoy, "fix/login", "@result ok")
    spawn_done(envoy, "feat/other", "@result ok")
    assert complete(script, "envoy parallel results --worker ", repo) == ["feat-other", "fix-login"]
    assert complete(script, "envoy parallel cleanup --worker fi", repo) == ["fix-login"]
    assert complete(script, "envoy parallel spawn --after ", repo) == ["feat-other", "fix-login"]


def test_worker_names_come_from_a_fast_hidden_command(repo, envoy, tmp_path):
    spawn_done(envoy, "w1", "@result ok")
    assert envoy("_workers").stdout == "w1\n"
    assert envoy("_workers", cwd=tmp_path).stdout == ""  # outside a repository: nothing, quietly


def test_zsh_runs_the_same_function_through_bashcompinit(repo, envoy):
    bash = envoy("completion", "bash").stdout
    zsh = envoy("completion", "zsh").stdout
    assert "bashcompinit" in zsh
    function = bash[bash.index("_envoy() {"):bash.index("\ncomplete -F")]
    assert function in zsh and zsh.rstrip().endswith(bash.rstrip().splitlines()[-1])
    if shutil.which("zsh"):  # where zsh is installed, it must at least parse
        subprocess.run(["zsh", "-n", "-c", zsh], check=True)


def test_an_unknown_shell_is_refused(repo, envoy):
    result = envoy("completion", "fish")
    assert result.code == 2 and result.error["type"] == "invalid_usage"
