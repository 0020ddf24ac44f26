"""worker/worktree.py: a worker's worktree made with what it needs, and deleted only
once git confirms it is the one envoy made there."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import git as run_git
from envoy.config import Config
from envoy.errors import EnvoyError
from envoy.git import Git
from envoy.worker import worktree
from envoy.worker.worktree import Layout


def record_for(repo: Path, name: str = "w", **fields) -> dict:
    sha = run_git(repo, "rev-parse", "HEAD").strip()
    return {"name": name, "branch": name, "base_sha": sha, "path": str(repo.parent / f"wt-{name}"), **fields}


WHERE = lambda repo: Layout(repo.parent, "wt-")  # noqa: E731


# -- layout ---------------------------------------------------------------------------
def test_the_default_layout_puts_worktrees_beside_the_main_checkout(repo):
    (repo / "sub").mkdir()
    where = worktree.layout(Git(repo / "sub"), Config(repo, {}))  # from a subdirectory too
    assert where.directory == repo.parent
    # the repository's name is in it: two checkouts side by side never share a worker's path
    assert where.path("fix-1") == repo.parent / "repo-claude-worker-fix-1"


def test_two_repositories_side_by_side_get_different_worktree_paths(tmp_path):
    paths = []
    for name in ("app", "lib"):
        (tmp_path / name).mkdir()
        run_git(tmp_path / name, "init", "-q")
        paths.append(worktree.layout(Git(tmp_path / name), Config(tmp_path / name, {})).path("fix-same"))
    assert paths[0] != paths[1] and all(p.parent == tmp_path for p in paths)


def test_a_worktree_made_where_envoy_put_them_before_still_verifies_and_is_removed(repo):
    """Workers spawned by an older envoy live at <parent>/<prefix><name>: still envoy's own."""
    legacy = repo.parent / "claude-worker-old"
    run_git(repo, "worktree", "add", "-q", "-b", "old", str(legacy))
    where = worktree.layout(Git(repo), Config(repo, {}))
    assert worktree.verify(Git(repo), where, "old", legacy) is None
    assert worktree.verify(Git(repo), where, "other", legacy) is not None
    worktree.remove(Git(repo), where, "old", legacy)
    assert not legacy.exists()


def test_a_long_repository_name_keeps_the_directory_name_within_255_bytes(tmp_path):
    where = Layout(tmp_path, "p" * 50, "r" * 300)
    assert len(where.path("n" * 200).name.encode()) <= 255


def test_a_configured_directory_is_expanded_and_resolved(repo, tmp_path):
    where = worktree.layout(Git(repo), Config(repo, {"PARALLEL_WORKTREE_DIR": "~/trees/../wt",
                                                    "PARALLEL_WORKER_PREFIX": "p-"}))
    assert where == Layout((tmp_path / "home" / "wt").resolve(), "p-")


def test_a_configured_directory_under_a_file_is_refused(repo):
    (repo.parent / "afile").write_text("")
    with pytest.raises(EnvoyError) as caught:
        worktree.layout(Git(repo), Config(repo, {"PARALLEL_WORKTREE_DIR": str(repo.parent / "afile" / "x")}))
    assert caught.value.kind == "invalid_config" and "afile" in caught.value.message


# -- create ---------------------------------------------------------------------------
def test_create_copies_untracked_env_includes_and_envoy_pyz_but_not_tracked_files(repo):
    (repo / ".gitignore").write_text(".env\nsecrets/\n*.log\n")
    (repo / "tracked.cfg").write_text("committed\n")
    run_git(repo, "add", ".gitignore", "tracked.cfg")
    run_git(repo, "commit", "-qm", "files")
    (repo / "tracked.cfg").write_text("local edit, not for the worker\n")
    (repo / ".env").write_text("TOKEN=1\n")
    (repo / ".env").chmod(0o640)
    (repo / "secrets").mkdir()
    (repo / "secrets" / "key.pem").write_text("key\n")
    (repo / "debug.log").write_text("not wanted\n")
    (repo / "notes.txt").write_text("untracked, not included\n")
    (repo / ".claude").mkdir()
    (repo / ".claude" / "envoy.pyz").write_bytes(b"PK fake pyz")
    (repo / ".worktreeinclude").write_text("secrets/\ntracked.cfg\n")
    git = Git(repo)
    record = record_for(repo)
    worktree.create(git, record)
    path = Path(record["path"])
    assert git.worktrees()[path] == "w"
    assert sorted(record["copied"]) == [".claude/envoy.pyz", ".env", "secrets/key.pem"]
    assert (path / ".env").read_text() == "TOKEN=1\n" and (path / ".env").stat().st_mode & 0o777 == 0o640
    assert (path / "secrets" / "key.pem").read_text() == "key\n"
    assert (path / ".claude" / "envoy.pyz").read_bytes() == b"PK fake pyz"
    assert (path / "tracked.cfg").read_text() == "committed\n"  # the committed file, not the local edit
    assert not (path / "debug.log").exists() and not (path / "notes.txt").exists()


def test_a_tracked_envoy_pyz_and_env_are_left_as_committed(repo):
    (repo / ".claude").mkdir()
    (repo / ".claude" / "envoy.pyz").write_bytes(b"committed pyz")
    (repo / ".env").write_text("committed\n")
    run_git(repo, "add", ".claude/envoy.pyz", ".env")
    run_git(repo, "commit", "-qm", "tracked")
    (repo / ".claude" / "envoy.pyz").write_bytes(b"local pyz")
    (repo / ".env").write_text("local\n")
    record = record_for(repo)
    worktree.create(Git(repo), record)
    path = Path(record["path"])
    assert record["copied"] == []
    assert (path / ".claude" / "envoy.pyz").read_bytes() == b"committed pyz"
    assert (path / ".env").read_text() == "committed\n"


def test_a_file_the_base_tracks_is_never_overwritten_by_the_main_checkouts_copy(repo):
    run_git(repo, "switch", "-q", "-c", "other")
    (repo / ".env").write_text("committed on other\n")
    run_git(repo, "add", ".env")
    run_git(repo, "commit", "-qm", "env on other")
    base = run_git(repo, "rev-parse", "HEAD").strip()
    run_git(repo, "switch", "-q", "main")
    (repo / ".env").write_text("untracked in main\n")  # what main's checkout has, untracked there
    record = record_for(repo, base_sha=base)  # spawned --from other
    worktree.create(Git(repo), record)
    assert (Path(record["path"]) / ".env").read_text() == "committed on other\n"
    assert record["copied"] == []


def test_create_without_a_base_is_refused_and_makes_nothing(repo):
    record = record_for(repo, base_sha=None)
    with pytest.raises(EnvoyError) as caught:
        worktree.create(Git(repo), record)
    assert caught.value.kind == "not_found"
    assert not Path(record["path"]).exists() and not Git(repo).branch_exists("w")


# -- verify and remove ----------------------------------------------------------------
def made(repo: Path, name: str = "w") -> tuple[Git, dict]:
    git = Git(repo)
    record = record_for(repo, name)
    worktree.create(git, record)
    return git, record


def test_verify_accepts_the_worktree_envoy_made_there(repo):
    git, record = made(repo)
    assert worktree.verify(git, WHERE(repo), "w", Path(record["path"])) is None
    assert worktree.verify(git, WHERE(repo), "w", repo.parent / "x" / ".." / "wt-w") is None  # the same place


def test_verify_refuses_a_worktree_somewhere_else(repo, tmp_path):
    git = Git(repo)
    elsewhere = tmp_path / "elsewhere" / "wt-w"
    git.worktree_add(elsewhere, "w", "HEAD")  # a real worktree, but not where envoy puts w's
    problem = worktree.verify(git, WHERE(repo), "w", elsewhere)
    assert problem and "not where envoy puts" in problem
    assert worktree.verify(git, WHERE(repo), "other", repo.parent / "wt-w")  # another worker's place


def test_verify_refuses_a_symlink_even_to_a_real_worktree(repo, tmp_path):
    git = Git(repo)
    real = tmp_path / "real"
    git.worktree_add(real, "w", "HEAD")
    (repo.parent / "wt-w").symlink_to(real)
    problem = worktree.verify(git, WHERE(repo), "w", repo.parent / "wt-w")
    assert problem and "symlink" in problem


def test_verify_refuses_a_directory_git_does_not_know(repo):
    (repo.parent / "wt-w").mkdir()
    problem = worktree.verify(Git(repo), WHERE(repo), "w", repo.parent / "wt-w")
    assert problem and "not a git worktree" in problem


def test_verify_refuses_the_main_checkout(repo):
    where = Layout(repo.parent, "")  # a prefix that makes the main checkout "worker repo"'s place
    problem = worktree.verify(Git(repo), where, "repo", repo)
    assert problem and "not a git worktree" in problem


def test_remove_deletes_a_verified_worktree_with_its_uncommitted_files(repo):
    git, record = made(repo)
    path = Path(record["path"])
    (path / "scratch").write_text("x")
    worktree.remove(git, WHERE(repo), "w", path)
    assert not path.exists() and path not in git.worktrees()
    assert git.branch_exists("w")  # remove takes the directory only


def victim(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "precious").write_text("mine")
    return directory


@pytest.mark.parametrize("kind", ["unregistered", "symlink", "elsewhere"])
def test_remove_never_deletes_an_unverified_path(repo, tmp_path, kind):
    git = Git(repo)
    target = repo.parent / "wt-w"
    if kind == "unregistered":
        keep = victim(target)
    elif kind == "symlink":
        keep = victim(tmp_path / "victim")
        target.symlink_to(keep)
    else:
        keep = victim(tmp_path / "victim")
        target = keep
    with pytest.raises(EnvoyError) as caught:
        worktree.remove(git, WHERE(repo), "w", target)
    assert caught.value.kind == "unverified_worktree"
    assert (keep / "precious").read_text() == "mine"


def test_remove_refuses_a_registered_worktree_envoy_did_not_put_there(repo, tmp_path):
    git = Git(repo)
    users = tmp_path / "users-tree"
    git.worktree_add(users, "users", "HEAD")
    (users / "work").write_text("uncommitted")
    with pytest.raises(EnvoyError):
        worktree.remove(git, WHERE(repo), "users", users)
    assert (users / "work").read_text() == "uncommitted" and users in git.worktrees()


# -- discard: undoing a checkout cut short --------------------------------------------
def test_discard_removes_a_fresh_checkout_and_its_branch(repo):
    git, record = made(repo)
    worktree.discard(git, WHERE(repo), record)
    assert not Path(record["path"]).exists() and not git.branch_exists("w")
    assert len(git.worktrees()) == 1


def test_discard_after_the_directory_went_prunes_and_deletes_the_branch(repo):
    import shutil

    git, record = made(repo)
    shutil.rmtree(record["path"])
    worktree.discard(git, WHERE(repo), record)
    assert not git.branch_exists("w") and len(git.worktrees()) == 1


def test_discard_keeps_a_branch_that_moved_past_its_base(repo):
    git, record = made(repo)
    path = Path(record["path"])
    (path / "work.txt").write_text("work\n")
    run_git(path, "add", "work.txt")
    run_git(path, "commit", "-qm", "work")
    tip = run_git(path, "rev-parse", "HEAD").strip()
    worktree.discard(git, WHERE(repo), record)
    assert not path.exists()
    assert git.branch_tip("w") == tip  # the commit is still on its branch


def test_discard_keeps_a_branch_at_base_that_is_checked_out_elsewhere(repo, tmp_path):
    git = Git(repo)
    record = record_for(repo)
    git.worktree_add(tmp_path / "users", "w", "HEAD")  # the user's own checkout of a branch named w
    with pytest.raises(EnvoyError) as caught:
        worktree.discard(git, WHERE(repo), record)
    assert caught.value.kind == "cleanup_incomplete"
    assert git.branch_exists("w") and (tmp_path / "users").is_dir()


def test_discard_without_a_base_never_touches_a_same_named_branch(repo):
    git = Git(repo)
    run_git(repo, "branch", "w")
    worktree.discard(git, WHERE(repo), record_for(repo, base_sha=None))
    assert git.branch_exists("w")


def test_discard_leaves_an_unverified_directory_and_says_so(repo):
    git = Git(repo)
    keep = victim(repo.parent / "wt-w")
    with pytest.raises(EnvoyError) as caught:
        worktree.discard(git, WHERE(repo), record_for(repo))
    assert caught.value.kind == "unverified_worktree"
    assert (keep / "precious").read_text() == "mine"
    assert git.branch_exists("main")


def test_checked_out_at_names_the_branch_of_a_worktree(repo):
    git, record = made(repo)
    assert worktree.checked_out_at(git, Path(record["path"])) == "w"
    assert worktree.checked_out_at(git, repo) == "main"
    assert worktree.checked_out_at(git, repo.parent) is None
