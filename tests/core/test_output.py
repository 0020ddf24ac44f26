"""output.py: JSON documents and human text on stdout."""
from __future__ import annotations

import json

import pytest


def test_json_output_is_valid_json_even_with_non_finite_numbers():
    from envoy import output

    text = output.dumps({"cost": float("nan"), "runs": [{"t": float("inf")}, 1.5], "n": -float("inf")})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) == \
        {"cost": None, "runs": [{"t": None}, 1.5], "n": None}


def _on_a_terminal(argv: list[str], cwd, env: dict[str, str]) -> str:
    """envoy's stdout and stderr as a terminal shows them (a pty)."""
    import os
    import pty
    import subprocess
    import sys

    from conftest import ENVOY_SOURCE

    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, str(ENVOY_SOURCE), *argv], cwd=cwd, stdout=follower, stderr=follower,
                            stdin=subprocess.DEVNULL, env={**os.environ, **env})
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the pty
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_colour_on_a_terminal_and_never_with_no_color_dumb_or_a_pipe(repo, envoy):
    from conftest import spawn_done

    spawn_done(envoy, "w", "@result ok")
    coloured = _on_a_terminal(["parallel", "status"], repo, {"TERM": "xterm"})
    assert "\033[32m" in coloured and "succeeded" in coloured  # a succeeded worker, in green
    assert "\033[" in _on_a_terminal(["parallel", "stauts"], repo, {"TERM": "xterm"})  # the error, in red
    for env in ({"NO_COLOR": "1", "TERM": "xterm"}, {"TERM": "dumb"}):
        plain = _on_a_terminal(["parallel", "status"], repo, env)
        assert "succeeded" in plain and "\033[" not in plain, env
    piped = envoy("parallel", "status", "--text")
    assert "succeeded" in piped.stdout and "\033[" not in piped.stdout


def test_paint_is_plain_unless_the_stream_is_a_terminal(monkeypatch):
    import io

    from envoy import output

    monkeypatch.delenv("NO_COLOR", raising=False)
    assert output.paint("x", "red", stream=io.StringIO()) == "x"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert output.paint("x", "red", stream=Tty()) == "\033[31mx\033[0m"
    monkeypatch.setenv("NO_COLOR", "1")
    assert output.paint("x", "red", stream=Tty()) == "x"
