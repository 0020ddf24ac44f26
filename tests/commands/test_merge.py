"""merge: a finished worker's work into its base, never touching a checkout it should not."""
from __future__ import annotations

import json

from conftest import git, spawn_done


def test_merge_into_base_without_touching_a_dirty_checkout_on_another_branch(repo, envoy):
    spawn_done(envoy, "feat/m", "@write m.txt m\n@commit add m", "--from", "main")
    git(repo, "switch", "-qc", "mine")
    (repo / "README").write_text("my uncommitted edit\n")
    (repo / "scratch.txt").write_text("untracked\n")
    before_head = git(repo, "rev-parse", "HEAD")
    main_before = git(repo, "rev-parse", "main").strip()
    result = envoy("parallel", "merge", "--worker", "feat-m")
    assert result.code == 0, result.stdout
    assert result.data["merged"] is True and result.data["into"] == "main"
    assert git(repo, "rev-parse", "main").strip() == git(repo, "rev-parse", "feat/m").strip()  # a fast-forward
    assert result.data["mode"] == "fast-forward"  # as git performed it, not as asked
    assert git(repo, "rev-parse", "HEAD") == before_head
    assert (repo / "README").read_text() == "my uncommitted edit\n" and (repo / "scratch.txt").exists()
    assert main_before != git(repo, "rev-parse", "main").strip()
    assert envoy("parallel", "cleanup", "--worker", "feat-m").code == 0


def test_merge_commit_squash_and_rebase_when_main_moved(repo, envoy):
    for name in ("one", "two", "three"):
        spawn_done(envoy, name, f"@write {name}.txt {name}\n@commit {name} a\n@write {name}2.txt x\n@commit {name} b")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    git(repo, "switch", "-qc", "elsewhere")
    merged = envoy("parallel", "merge", "--worker", "one").data
    assert merged["mode"] == "merge"
    assert git(repo, "log", "-1", "--format=%P", "main").count(" ") == 1  # two parents
    squashed = envoy("parallel", "merge", "--worker", "two", "--squash").data
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "Squashed 2 commits of two"
    assert git(repo, "log", "-1", "--format=%P", "main").count(" ") == 0
    rebased = envoy("parallel", "merge", "--worker", "three", "--rebase").data
    assert git(repo, "log", "-2", "--format=%s", "main").split("\n")[:2] == ["three b", "three a"]
    assert squashed["merged"] and rebased["merged"]
    for name in ("one.txt", "two2.txt", "three2.txt"):
        assert git(repo, "show", f"main:{name}")
    # Squashed and rebased tips are not ancestors of main, yet cleanup knows they are merged.
    assert envoy("parallel", "cleanup").data["skipped"] == []
    assert git(repo, "worktree", "list").count("\n") == 1


def test_merge_into_a_checked_out_clean_branch_updates_its_files(repo, envoy):
    spawn_done(envoy, "f", "@write f.txt f\n@commit f")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    assert envoy("parallel", "merge", "--worker", "f").code == 0
    assert (repo / "f.txt").read_text() == "f\n"
    assert git(repo, "status", "--porcelain") == ""


def test_merge_refused_by_local_changes_changes_nothing(repo, envoy):
    spawn_done(envoy, "f", "@run echo worker > README\n@commit edit readme")
    (repo / "README").write_text("local edit\n")
    before = git(repo, "rev-parse", "main")
    result = envoy("parallel", "merge", "--worker", "f")
    assert result.code == 1 and result.error["type"] == "git_error" and "nothing was changed" in result.error["message"]
    assert git(repo, "rev-parse", "main") == before and (repo / "README").read_text() == "local edit\n"
    # merge wrote down the merge before moving main; it takes that back when main cannot move
    assert "merged_sha" not in json.loads((repo / ".git" / "envoy" / "workers" / "f.json").read_text())
    assert envoy("parallel", "cleanup", "--worker", "f").error["type"] == "unmerged"


def test_merge_conflict_changes_nothing_and_names_files(repo, envoy):
    spawn_done(envoy, "c", "@run echo worker > README\n@commit worker readme")
    git(repo, "switch", "-qc", "other")
    (repo / "README").write_text("main side\n")
    git(repo, "commit", "-qam", "main readme")
    git(repo, "switch", "-q", "main")
    git(repo, "merge", "-q", "other")
    git(repo, "switch", "-q", "other")
    before = git(repo, "rev-parse", "main")
    for flags in ([], ["--squash"], ["--rebase"]):
        result = envoy("parallel", "merge", "--worker", "c", *flags)
        assert result.code == 1 and result.error["type"] == "merge_conflict", result.stdout
        assert result.error["files"] == ["README"]
        assert git(repo, "rev-parse", "main") == before
    assert git(repo, "worktree", "list").count("\n") == 2  # no temporary worktree left behind
    assert envoy("parallel", "cleanup", "--worker", "c").error["type"] == "unmerged"


def test_merge_refusals(repo, envoy):
    envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60")
    assert envoy("parallel", "merge", "--worker", "busy").error["type"] == "still_running"
    spawn_done(envoy, "x", "@write x.txt x\n@commit x")
    assert envoy("parallel", "merge", "--worker", "x", "--into", "nope").error["type"] == "invalid_input"
    assert envoy("parallel", "merge", "--worker", "x", "--squash", "--rebase").error["type"] == "invalid_input"
    nothing = spawn_done(envoy, "empty", "@result nothing")
    result = envoy("parallel", "merge", "--worker", "empty")
    assert result.code == 0 and result.data["merged"] is False and nothing


def test_merge_into_the_workers_own_branch_is_refused(repo, envoy):
    spawn_done(envoy, "own", "@write own.txt o\n@commit own")
    result = envoy("parallel", "merge", "--worker", "own", "--into", "own")
    assert result.code == 1 and result.error["type"] == "invalid_input", result.stdout
    assert "--into" in result.error["suggestion"]
    assert "merged_sha" not in json.loads((repo / ".git" / "envoy" / "workers" / "own.json").read_text())
    assert envoy("parallel", "cleanup", "--worker", "own").error["type"] == "unmerged"
    assert git(repo, "branch", "--list", "own").strip()


def test_merge_into_what_is_not_a_branch_to_merge_into_is_refused(repo, envoy):
    spawn_done(envoy, "w", "@write w.txt w\n@commit w")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    git(repo, "tag", "v1", "main~1")
    envoy("parallel", "spawn", "--branch", "busy", "--task", "@sleep 60")
    before = git(repo, "for-each-ref")
    for into, kind in (("main~1", "invalid_input"), ("v1", "invalid_input"), ("refs/heads/main", "invalid_input"),
                       ("HEAD", "invalid_input"), ("busy", "still_running")):
        result = envoy("parallel", "merge", "--worker", "w", "--into", into)
        assert result.code == 1 and result.error["type"] == kind, (into, result.stdout)
        assert result.error["suggestion"]
    empty = envoy("parallel", "merge", "--worker", "w", "--into", "")
    assert empty.code == 2 and empty.error["type"] == "invalid_usage"
    assert git(repo, "for-each-ref") == before
    assert "merged_sha" not in json.loads((repo / ".git" / "envoy" / "workers" / "w.json").read_text())


def test_merging_again_after_a_squash_is_already_merged(repo, envoy):
    spawn_done(envoy, "sq", "@write a.txt a\n@commit a\n@write b.txt b\n@commit b")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    git(repo, "switch", "-qc", "elsewhere")
    assert envoy("parallel", "merge", "--worker", "sq", "--squash").data["merged"]
    after_squash = git(repo, "rev-parse", "main")
    for flags in (["--rebase"], [], ["--squash"]):
        result = envoy("parallel", "merge", "--worker", "sq", *flags)
        assert result.code == 0, (flags, result.stdout)
        assert result.data["merged"] is False and "already" in result.data["note"], result.stdout
        assert git(repo, "rev-parse", "main") == after_squash
    assert envoy("parallel", "cleanup", "--worker", "sq").code == 0


def test_rebase_when_the_target_already_has_every_commit_is_already_merged(repo, envoy):
    """The user cherry-picked the worker's one commit and then changed the file on main:
    the trial merge conflicts, but a rebase has nothing left to replay."""
    spawn_done(envoy, "picked", "@write a.txt a\n@commit a")
    git(repo, "cherry-pick", "-x", git(repo, "rev-parse", "picked").strip())
    (repo / "a.txt").write_text("a, changed on main\n")
    git(repo, "commit", "-qam", "main changes a")
    git(repo, "switch", "-qc", "elsewhere")
    main = git(repo, "rev-parse", "main")
    result = envoy("parallel", "merge", "--worker", "picked", "--rebase")
    assert result.code == 0, result.stdout
    assert result.data["merged"] is False and "already" in result.data["note"], result.stdout
    assert git(repo, "rev-parse", "main") == main
    assert envoy("parallel", "cleanup", "--worker", "picked").code == 0  # counted as merged


def test_rebase_drops_commits_the_target_already_has(repo, envoy):
    spawn_done(envoy, "part", "@write a.txt a\n@commit a\n@write b.txt b\n@commit b\n@write c.txt c\n@commit c")
    first = git(repo, "rev-parse", "part~2").strip()
    git(repo, "cherry-pick", "-x", first)  # main has commit a under another sha
    (repo / "b.txt").write_text("b\n")  # and the change of commit b, in a commit of its own
    (repo / "other.txt").write_text("o\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "b and more")
    git(repo, "switch", "-qc", "elsewhere")
    result = envoy("parallel", "merge", "--worker", "part", "--rebase")
    assert result.code == 0, result.stdout
    assert git(repo, "log", "--format=%s", "main").splitlines() == ["c", "b and more", "a", "init"]
    assert git(repo, "show", "main:c.txt") == "c\n"


def test_rebase_of_a_branch_with_a_merge_commit_linearises_it(repo, envoy):
    """As git rebase does: the merge commit is dropped, the commits it brought replayed."""
    git(repo, "switch", "-qc", "side")
    (repo / "s.txt").write_text("s\n")
    git(repo, "add", "s.txt")
    git(repo, "commit", "-qm", "s")
    git(repo, "switch", "-q", "main")
    spawn_done(envoy, "mixed", "@write a.txt a\n@commit a\n@run git merge -q --no-ff -m merge-side side\n"
               "@write b.txt b\n@commit b", "--from", "main")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    result = envoy("parallel", "merge", "--worker", "mixed", "--rebase")
    assert result.code == 0, result.stdout
    assert git(repo, "log", "--format=%s", "main").split() == ["b", "a", "s", "main", "moved", "init"] or \
        git(repo, "log", "--format=%s", "main").split() == ["b", "s", "a", "main", "moved", "init"]
    assert git(repo, "log", "--merges", "--format=%s", "main") == ""
    for name in ("a.txt", "b.txt", "s.txt"):
        assert git(repo, "show", f"main:{name}")


def test_merge_and_diff_count_every_commit(repo, envoy):
    """Past the 100 commits a listing shows, the counts stay true."""
    spawn_done(envoy, "many", "@run for i in $(seq 1 120); do echo $i > n.txt; git add n.txt; "
               "git commit -qm c$i; done")
    diff = envoy("parallel", "diff", "--worker", "many", "--stat").data
    assert len(diff["commits"]) == 100 and diff["commits_omitted"] == 20
    assert "and 20 more commits" in envoy("parallel", "diff", "--worker", "many", "--stat", "--text").stdout
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    git(repo, "switch", "-qc", "elsewhere")
    squashed = envoy("parallel", "merge", "--worker", "many", "--squash").data
    assert squashed["commits"] == 1  # what landed on main: one commit
    assert git(repo, "log", "-1", "--format=%s", "main").strip() == "Squashed 120 commits of many"
    git(repo, "branch", "-f", "main", "main~1")
    merged = envoy("parallel", "merge", "--worker", "many").data
    assert merged["commits"] == 121  # its 120 and the merge commit
    assert "120 commit(s)" in git(repo, "log", "-1", "--format=%b", "main")


def test_a_rebase_git_cannot_commit_is_an_error_never_nothing_to_merge(repo, envoy):
    """A prepare-commit-msg hook that fails (as signing or a policy hook can) stops the
    cherry-pick with the change staged: that is a failure, not a commit that became empty."""
    spawn_done(envoy, "hooked", "@write h.txt h\n@commit add h")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    hook = repo / ".git" / "hooks" / "prepare-commit-msg"
    hook.write_text("#!/bin/sh\necho policy says no >&2\nexit 1\n")
    hook.chmod(0o755)
    main = git(repo, "rev-parse", "main")
    result = envoy("parallel", "merge", "--worker", "hooked", "--rebase")
    assert result.code == 1, result.stdout
    assert result.error["type"] == "git_error" and "cherry-pick" in result.error["message"], result.error
    assert git(repo, "rev-parse", "main") == main
    hook.unlink()
    merged = envoy("parallel", "merge", "--worker", "hooked", "--rebase")
    assert merged.code == 0 and merged.data["merged"] is True, merged.stdout


def test_merge_and_rebase_without_a_git_identity_are_refused_before_anything(repo, envoy, tmp_path):
    spawn_done(envoy, "who", "@write w.txt w\n@commit add w")
    git(repo, "commit", "-q", "--allow-empty", "-m", "main moved")
    config = tmp_path / "no-identity.gitconfig"
    config.write_text("[user]\n\tuseConfigOnly = true\n")
    main = git(repo, "rev-parse", "main")
    for flags in (["--rebase"], [], ["--squash"]):
        result = envoy("parallel", "merge", "--worker", "who", *flags, env={"GIT_CONFIG_GLOBAL": str(config)})
        assert result.code == 1, (flags, result.stdout)
        assert result.error["type"] == "git_identity_missing" and "user.email" in result.error["suggestion"]
        assert git(repo, "rev-parse", "main") == main
    landed = envoy("parallel", "land", env={"GIT_CONFIG_GLOBAL": str(config)})
    assert landed.code == 1 and landed.error["type"] == "git_identity_missing", landed.stdout
    resumed = envoy("parallel", "resume", "--worker", "who", "--task", "more", env={"GIT_CONFIG_GLOBAL": str(config)})
    assert resumed.code == 1 and resumed.error["type"] == "git_identity_missing", resumed.stdout
    assert git(repo, "rev-parse", "main") == main


def test_a_rebase_with_nothing_to_replay_onto_is_reported_as_the_fast_forward_it_was(repo, envoy):
    spawn_done(envoy, "r", "@write r.txt r\n@commit r")
    result = envoy("parallel", "merge", "--worker", "r", "--rebase")
    assert result.data["merged"] is True and result.data["mode"] == "fast-forward"
    assert git(repo, "rev-parse", "main").strip() == git(repo, "rev-parse", "r").strip()
