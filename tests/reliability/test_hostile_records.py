"""Records on disk are untrusted input: files in .git/envoy/workers/ that are not
records, a real worker's record corrupted, a record edited to point outside the
repository. Every verb still answers (one document, never internal_error), a
broken record is shown (with its path) and can be cleaned up, nothing it names
outside envoy's own worktrees is deleted, and the invariants hold."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from invariants import ask, assert_invariants, assert_no_orphans, snapshot
from rig import Rig, rig  # noqa: F401 (rig: a fixture)

USER = {"main"}

NOT_RECORDS = {
    "list": "[1, 2, 3]",
    "empty-object": "{}",
    "bad-json": '{"name": "bad-json", "branch": ',
    "wrong-types": json.dumps({"name": 5, "branch": ["x"], "path": None, "state": "running", "run": "one",
                               "supervisor_pid": "1", "created_at": 7, "runs": {"a": 1}, "options": []}),
    "binary": b"\xff\xfe\x00garbage".decode("latin-1"),
}


def every_verb_answers(rig: Rig) -> str:
    """Each verb that reads records answers with one document and no internal_error;
    status and results succeed. Returns status' stdout."""
    status = ask(rig.repo, "parallel", "status")
    status.data()
    ask(rig.repo, "parallel", "results").data()
    for args in (("wait", "--timeout", "1"), ("conflicts",), ("cleanup",)):
        ask(rig.repo, "parallel", *args).document()
    return status.stdout


@pytest.mark.parametrize("kind", sorted(NOT_RECORDS))
def test_a_file_that_is_not_a_record(rig, kind):
    """Beside a real worker: everything still answers, the file is listed with its path,
    new workers still start, and cleanup --all --force recovers."""
    ask(rig.repo, "parallel", "spawn", "--branch", "real", "--wait", "--task", "@write r.txt r\n@commit r").data()
    file = rig.state / "workers" / f"{kind}.json"
    file.write_text(NOT_RECORDS[kind], encoding="latin-1")
    before = snapshot(rig.repo)
    shown = every_verb_answers(rig)
    assert file.name in shown, f"status does not show the broken record {file}: {shown[:600]}"
    new = ask(rig.repo, "parallel", "spawn", "--branch", "after-it", "--wait", "--task", "@result ok").data()
    assert new["state"] == "succeeded", new
    assert_invariants(rig.repo, before, USER)
    every_verb_answers(rig)


def test_a_workers_record_corrupted(rig):
    """A worker with a commit and uncommitted work whose record became unreadable: it
    still claims its worktree and branch, and cleanup --all --force neither loses the
    work nor leaves them orphaned."""
    name = ask(rig.repo, "parallel", "spawn", "--branch", "feat/corrupt", "--wait", "--task",
               "@write c.txt committed\n@commit committed work").data()["name"]
    tree = rig.record(name)["path"]
    Path(tree, "wip.txt").write_text("uncommitted work\n")
    (rig.state / "workers" / f"{name}.json").write_text('{"name": "feat-corrupt", "branch": "feat/corr')
    before = snapshot(rig.repo)
    assert_no_orphans(rig.repo, USER, before)
    shown = every_verb_answers(rig)
    assert name in shown, shown[:600]
    assert_invariants(rig.repo, before, USER)


def test_a_record_pointing_outside_the_repository(rig, tmp_path):
    """A record edited so that its name climbs out of .git/envoy and its path names a
    directory that is no worktree: no verb deletes or changes anything there."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me\n")
    (tmp_path / "victim.json").write_text('{"keep": "me"}\n')
    real = ask(rig.repo, "parallel", "spawn", "--branch", "honest", "--wait", "--task", "@result ok").data()
    record = rig.record(real["name"])
    record.update(name="../../../../victim", branch="evil", path=str(victim), worktree_created=True)
    (rig.state / "workers" / "evil.json").write_text(json.dumps(record))
    before = snapshot(rig.repo)
    every_verb_answers(rig)
    for args in (("cleanup", "--worker", "../../../../victim", "--force"), ("cleanup", "--worker", "evil", "--force"),
                 ("cleanup", "--all", "--force"), ("merge", "--worker", "evil"), ("diff", "--worker", "evil"),
                 ("results", "--worker", "evil")):
        ask(rig.repo, "parallel", *args).document()
        assert (victim / "precious.txt").read_text() == "keep me\n", f"{args} touched {victim}"
        assert (tmp_path / "victim.json").read_text() == '{"keep": "me"}\n', f"{args} touched victim.json"
    assert_invariants(rig.repo, before, USER)
    assert (victim / "precious.txt").read_text() == "keep me\n"
