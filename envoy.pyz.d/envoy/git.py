"""Every git call envoy makes, through `sh`.

Failures become `GitError` (an EnvoyError of type `git_error`) carrying
git's own stderr, so a user sees what git said and what to do about it.
git's exit code is reported in the message, never as envoy's: envoy exits
only 0, 1, 2 or 130, whatever git did (128, 255 ...).
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Iterable

from envoy.errors import EnvoyError

# Variables git hooks and wrappers export; inherited, they would point our
# calls at some other repository or index.
_LEAKY_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_PREFIX", "GIT_COMMON_DIR",
               "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES")


# How a hook command `envoy init` writes finds envoy.log when envoy itself cannot
# run (it is shell text, run by Claude Code; the absolute common dir, from any worktree).
COMMON_DIR_SHELL = 'git -C "$CLAUDE_PROJECT_DIR" rev-parse --path-format=absolute --git-common-dir'


class GitError(EnvoyError):
    def __init__(self, args: Iterable[str], stderr: str, exit_code: int) -> None:
        argv = " ".join(args)
        detail = stderr.strip().splitlines()
        message = f"git {argv} failed (exit {exit_code})" + (f": {detail[-1]}" if detail else "")
        super().__init__("git_error", message, "fix the repository state git reports, then retry")
        self.stderr = stderr
        self.git_exit_code = exit_code  # not `exit_code`: that is envoy's own (1)


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the variables that would point git (or a
    command run in a worktree) at another repository or index."""
    env = {k: v for k, v in os.environ.items() if k not in _LEAKY_VARS}
    env["GIT_TERMINAL_PROMPT"] = "0"
    if extra:
        env.update(extra)
    return env


_PLAIN_COMPONENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _plain_branch_name(name: str) -> bool:
    """A name every rule of git-check-ref-format accepts: slash-separated components
    of letters, digits, '_', '-' and '.', none starting with '.' or '-', none ending
    with '.' or '.lock', no '..'. False only means "ask git"."""
    return (name != "HEAD" and ".." not in name
            and all(_PLAIN_COMPONENT.fullmatch(part) and not part.endswith((".", ".lock"))
                    for part in name.split("/")))


DUBIOUS = "detected dubious ownership in repository"


def unsafe_repository(stderr: str) -> EnvoyError:
    """git refuses to work in a repository owned by another user (safe.directory): said
    as git says it, with the command git suggests. Whatever envoy asked, it is the answer."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    where = next((line.split(DUBIOUS, 1)[1].strip(" at'") for line in lines if DUBIOUS in line), "")
    fix = next((line for line in lines if line.startswith("git config") and "safe.directory" in line),
               "git config --global --add safe.directory <the repository's path>")
    return EnvoyError("unsafe_repository",
                      f"git refuses the repository at {where or 'this path'}: it is owned by another user "
                      "(dubious ownership, see git help config: safe.directory)",
                      f"if you trust it, tell git so: {fix} (or run envoy as the repository's owner)")


IDENTITY_FIX = ('git config --global user.name "Your Name" && git config --global user.email "you@example.com" '
                "(without --global: for this repository only; in CI, GIT_AUTHOR_NAME, GIT_AUTHOR_EMAIL, "
                "GIT_COMMITTER_NAME and GIT_COMMITTER_EMAIL work too)")


class Git:
    """git, run in one directory (a worktree or any directory inside one)."""

    def __init__(self, cwd: Path | str, common_dir: Path | None = None) -> None:
        self.cwd = Path(cwd)
        self._common_dir = common_dir

    def _git(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str, str]:
        """The one way envoy runs git: (exit code, stdout, stderr). Interrupted (Ctrl-C,
        or SIGINT to us alone), it stops git and waits for it before raising: an undo
        must not race a git still writing (git removes its own half-made worktree on
        SIGTERM). A plain subprocess, not `sh`: sh's threads cost ~6 ms of CPU per call,
        paid for every worker a queue starts."""
        import signal
        import subprocess  # here, not at the top: status and hooks never run git

        where = cwd or self.cwd
        try:
            proc = subprocess.Popen(["git", "-c", "core.quotepath=off", *args], cwd=str(where), env=environment(env),
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except FileNotFoundError:
            if not os.path.isdir(where):  # the directory to run in went (a worktree removed meanwhile)
                return 128, "", f"cannot run git in {where}: it no longer exists"
            raise EnvoyError("git_missing", "git is not installed or not on PATH", "install git and retry") from None
        except NotADirectoryError:
            return 128, "", f"cannot run git in {where}: it is not a directory"
        try:
            out, err = proc.communicate()
        except BaseException:
            with contextlib.suppress(OSError):  # OSError: git already ended
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(OSError):
                proc.wait()
            raise
        code, stdout, stderr = proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")
        if code == 128 and DUBIOUS in stderr:
            raise unsafe_repository(stderr)
        return code, stdout, stderr

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            ok: tuple[int, ...] = (0,)) -> str:
        """git's output; GitError when it exits with a code not in `ok`."""
        code, out, err = self._git(*args, cwd=cwd, env=env)
        if code not in ok:
            raise GitError(args, err, code)
        return out

    def _status(self, *args: str, cwd: Path | None = None) -> int:
        """Exit code of a git query that answers yes/no by its status."""
        return self._git(*args, cwd=cwd)[0]

    # -- the repository -------------------------------------------------
    def toplevel(self) -> Path:
        try:
            out = self.run("rev-parse", "--show-toplevel")
        except GitError as exc:
            if "not a git repository" in exc.stderr:
                raise EnvoyError("not_a_repo", f"{self.cwd} is not inside a git repository",
                                 "cd into your repository (or run `git init` and make a first commit)") from None
            if "must be run in a work tree" in exc.stderr:  # a bare repository
                raise EnvoyError("not_a_repo", f"{self.cwd} is not inside a git work tree",
                                 "cd into a checkout of the repository (a bare repository has none)") from None
            raise
        if not out.strip():  # inside .git, or a bare repository
            raise EnvoyError("not_a_repo", f"{self.cwd} is not inside a git work tree",
                             "cd into your repository's working tree")
        return Path(out.strip())

    def check_can_commit(self) -> None:
        """Refuse (`git_identity_missing`) when git could not make a commit here because it
        has no identity to write in it: a worker's commits, a merge, a rebase would all
        fail later, after work was done. One `git var`, run in the repository so its own
        config counts. git var does not look at the repository when git refuses it
        (safe.directory): on a failure, that is asked first, as it is the first fix."""
        code, _, err = self._git("var", "GIT_COMMITTER_IDENT")
        if code == 0:
            return
        self._git("rev-parse", "--git-dir")  # raises unsafe_repository if that is the trouble
        detail = [line.strip() for line in err.splitlines() if line.strip()]
        if not any("identity unknown" in line or "auto-detect" in line or "empty ident" in line for line in detail):
            raise GitError(("var", "GIT_COMMITTER_IDENT"), err, code)
        raise EnvoyError("git_identity_missing",
                         "git has no identity (user.name and user.email) to commit with in this repository: "
                         + (detail[-1] if detail else "git var GIT_COMMITTER_IDENT failed"),
                         IDENTITY_FIX)

    def common_dir(self) -> Path:
        if self._common_dir is None:
            self._common_dir = Path(self.run("rev-parse", "--path-format=absolute", "--git-common-dir").strip())
        return self._common_dir

    def main_worktree(self) -> Path:
        """The repository's main checkout. Usually the parent of the common dir; asked of
        `git worktree list` only otherwise, as that fails while another process is in
        the middle of `git worktree add`."""
        common = self.common_dir()
        if common.name == ".git" and (common.parent / ".git").is_dir():
            return common.parent
        for attempt in range(5):
            try:
                first = self.run("worktree", "list", "--porcelain").split("\n", 1)[0]
                return Path(first.removeprefix("worktree "))
            except GitError:
                if attempt == 4:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def head(self) -> tuple[str, str | None] | None:
        """(HEAD's commit, its branch or None when detached), or None before the first commit."""
        code, out, _ = self._git("rev-parse", "HEAD", "--abbrev-ref", "HEAD")
        lines = out.split()
        if code != 0 or len(lines) != 2:
            return None
        return lines[0], (None if lines[1] == "HEAD" else lines[1])

    def resolve_commit(self, ref: str) -> str | None:
        # 128: a ref git cannot even look up (HEAD@{1} without that reflog entry): not a commit either
        out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", ok=(0, 1, 128))
        return out.strip() or None

    def valid_branch_name(self, name: str) -> bool:
        """git's verdict (check-ref-format --branch); names of the usual shape are
        judged here, without starting git (a spawn's first git call)."""
        if _plain_branch_name(name):
            return True
        return self._status("check-ref-format", "--branch", name) == 0

    def branch_tip(self, branch: str) -> str | None:
        """The commit of local branch `branch`, or None when no branch has exactly that
        name: `main~1`, a tag or `HEAD` name commits, not branches to move or delete."""
        if not branch or branch.startswith("-") or not self.valid_branch_name(branch):
            return None
        out = self.run("show-ref", "--verify", "--hash", "--", f"refs/heads/{branch}", ok=(0, 1, 128))
        return out.strip() or None

    def branch_exists(self, branch: str) -> bool:
        return self.branch_tip(branch) is not None

    def ref_exists(self, ref: str, cwd: Path | None = None) -> bool:
        return self.run("rev-parse", "--verify", "--quiet", ref, ok=(0, 1), cwd=cwd).strip() != ""

    def branch_in_the_way(self, branch: str) -> str | None:
        """The existing branch that stops `branch` from being created: itself, a branch
        named like one of its directories (x for x/y), or one inside it (x/y for x)."""
        parts = branch.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        out = self.run("for-each-ref", "--format=%(refname)", *(f"refs/heads/{p}" for p in prefixes))
        for ref in out.splitlines():
            name = ref.removeprefix("refs/heads/")
            if name in prefixes or name.startswith(branch + "/"):
                return name
        return None

    def branch_tips(self) -> dict[str, str]:
        """Every local branch and its tip commit, in one call."""
        out = self.run("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
        return {ref[len("refs/heads/"):]: sha for sha, _, ref in (line.partition(" ") for line in out.splitlines())}

    def merged_into(self, commit: str) -> set[str]:
        """The local branches whose tips `commit` contains, in one call."""
        out = self.run("for-each-ref", f"--merged={commit}", "--format=%(refname)", "refs/heads/")
        return {line[len("refs/heads/"):] for line in out.splitlines()}

    # -- worktrees and branches -----------------------------------------
    def worktree_add(self, path: Path, branch: str, start: str) -> None:
        """Make a worktree with a new branch (interrupted, git is stopped first: see _git)."""
        # Parallel checkout (one writer per core, from 100 files up): on a
        # 20,000-file repository the worktree appears 10-15% sooner.
        self.run("-c", "checkout.workers=0", "worktree", "add", "--quiet", "-b", branch, "--", str(path), start)

    def worktree_add_detached(self, path: Path, commit: str) -> None:
        """A scratch worktree at `commit` on no branch, its files not yet written (see
        populate): registering it is quick, so it is all that needs the launch mutex."""
        self.run("worktree", "add", "--quiet", "--detach", "--no-checkout", str(path), commit)

    def populate(self, worktree: Path) -> None:
        """Write the files of a worktree made with --no-checkout (index and work tree to its HEAD)."""
        self.run("-c", "checkout.workers=0", "reset", "--hard", "--quiet", cwd=worktree)

    def worktree_remove(self, path: Path) -> None:
        # --force twice: also when locked; callers checked for work to keep first.
        self.run("worktree", "remove", "--force", "--force", str(path))

    def worktree_prune(self) -> None:
        self.run("worktree", "prune")

    def update_ref(self, ref: str, sha: str, old: str | None = None) -> None:
        """Point `ref` at `sha`; with `old`, a compare-and-swap: git refuses (GitError)
        unless the ref still points at `old`."""
        self.run("update-ref", ref, sha, *([old] if old is not None else []))

    def delete_branch_at(self, branch: str, sha: str) -> bool:
        """Delete `branch` only while it still points at `sha` (compare-and-swap):
        False, changing nothing, if it moved or went meanwhile."""
        try:
            self.run("update-ref", "-d", f"refs/heads/{branch}", sha)
        except GitError:
            if self.branch_tip(branch) == sha:
                raise  # not a race: git could not delete it
            return False
        return True

    # -- the trash: refs/envoy/trash/<name>[-n] ---------------------------
    def keep_in_trash(self, name: str, sha: str) -> str:
        """A new ref under refs/envoy/trash/ pointing at `sha`: `<name>`, else
        `<name>-2`, ... Created only where none exists (an empty old value), so two
        envoy processes keeping work under one name never overwrite each other's."""
        for n in range(1, 1000):
            ref = f"refs/envoy/trash/{name}" + (f"-{n}" if n > 1 else "")
            try:
                self.run("update-ref", "--no-deref", ref, sha, "")  # refused where the ref exists
                return ref
            except GitError:
                if not self.ref_exists(ref):
                    raise  # not taken: git could not write it
        raise EnvoyError("git_error", f"refs/envoy/trash/{name}-1..999 are all taken",
                         "delete trash refs you no longer need (git for-each-ref refs/envoy/trash/)")

    def untracked(self, toplevel: Path, *paths: str, pattern_file: Path | None = None) -> list[str]:
        """Untracked files of `toplevel`: those among `paths`, or those matched by a
        gitignore-syntax `pattern_file` (ignored or not)."""
        args = ["ls-files", "-z", "--others"]
        if pattern_file is not None:
            args += ["--ignored", f"--exclude-from={pattern_file}"]
        out = self.run(*args, "--", *paths, cwd=toplevel)
        return [p for p in out.split("\0") if p]

    def is_ignored(self, toplevel: Path, path: str) -> bool:
        """Whether an untracked `path` is ignored (by any .gitignore, info/exclude or core.excludesFile)."""
        return self._status("check-ignore", "-q", "--", path, cwd=toplevel) == 0

    def worktree_of(self, branch: str) -> Path | None:
        """The worktree that has `branch` checked out, if any."""
        return next((path for path, there in self.worktrees().items() if there == branch), None)

    def worktrees(self) -> dict[Path, str | None]:
        """Every worktree git knows (the main one first) and the branch checked out
        there (None: detached, or not yet made)."""
        return {path: branch for path, branch, _ in self._worktree_entries()}

    def worktrees_being_made(self) -> list[Path]:
        """Worktrees a `git worktree add` is still making (git locks them meanwhile)."""
        return [path for path, _, locked in self._worktree_entries() if locked == "initializing"]

    def _worktree_entries(self) -> list[tuple[Path, str | None, str | None]]:
        """(path, branch checked out, lock reason) of every worktree, the main one first."""
        entries: list[tuple[Path, str | None, str | None]] = []
        for block in self.run("worktree", "list", "--porcelain").split("\n\n"):
            fields = dict(line.partition(" ")[::2] for line in block.splitlines())
            if "worktree" in fields:
                branch = fields.get("branch", "").removeprefix("refs/heads/") or None
                entries.append((Path(fields["worktree"]), branch, fields.get("locked")))
        return entries

    # -- merging without a checkout -------------------------------------
    def merge_tree(self, ours: str, theirs: str) -> tuple[str | None, list[str]]:
        """A dry-run merge (no checkout, no index): (tree, []) when clean,
        (None, conflicted files) when not."""
        code, out, err = self._git("merge-tree", "--write-tree", "--name-only", "--no-messages",
                                                 ours, theirs)
        lines = [line for line in out.splitlines() if line]
        if code == 0 and lines:
            return lines[0], []
        if code == 1 and lines:
            return None, sorted(set(lines[1:]))
        raise GitError(("merge-tree", ours, theirs), err, code)

    def merge_base(self, a: str, b: str) -> str:
        return self.run("merge-base", a, b).strip()

    def tree_of(self, commit: str) -> str:
        return self.run("rev-parse", "--verify", "--end-of-options", f"{commit}^{{tree}}").strip()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._status("merge-base", "--is-ancestor", ancestor, descendant) == 0

    def commit_tree(self, tree: str, parents: list[str], message: str) -> str:
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.run(*args, "-m", message).strip()

    def fast_forward(self, worktree: Path, sha: str) -> None:
        """Move the branch checked out in `worktree` to `sha`, updating its files
        (git refuses, changing nothing, if local changes would be overwritten)."""
        self.run("merge", "--ff-only", "--quiet", sha, cwd=worktree)

    def cherry_pick_onto(self, onto: str, tip: str, path: Path) -> tuple[str | None, list[str]]:
        """Replay the commits of `tip` that `onto` lacks onto `onto`, picked as git rebase
        picks them (no merge commits, none whose patch `onto` already has), in a private
        worktree made at `path` and removed after: (new tip, []) or (None, conflicted
        files). The caller's checkouts are untouched."""
        if not self.run("rev-list", "--right-only", "--cherry-pick", "--no-merges", f"{onto}...{tip}", "--").strip():
            return onto, []  # `onto` has every change already (cherry-picked, say): nothing to replay
        self.run("worktree", "add", "--quiet", "--detach", str(path), onto)
        try:
            args: tuple[str, ...] = ("cherry-pick", "--allow-empty", "--right-only", "--cherry-pick",
                                     "--no-merges", f"{onto}...{tip}")
            while True:
                code, _, err = self._git(*args, cwd=path)
                if code == 0:
                    return self.run("rev-parse", "HEAD", cwd=path).strip(), []
                conflicted = self.run("diff", "--name-only", "-z", "--diff-filter=U", cwd=path).split("\0")
                # Stopped with nothing staged: the commit became empty. With changes staged,
                # git could not make the commit (no identity, a hook, signing): a failure.
                became_empty = (not any(conflicted) and self.ref_exists("CHERRY_PICK_HEAD", cwd=path)
                                and self._status("diff", "--cached", "--quiet", "HEAD", "--", cwd=path) == 0)
                if not became_empty:
                    self._status("cherry-pick", "--abort", cwd=path)
                    if not any(conflicted):
                        raise GitError(args, err, code)
                    return None, sorted({p for p in conflicted if p})
                # Stopped on a commit that became empty: the target already has
                # that change (say, merged before as a squash). Drop it, as rebase does.
                args = ("cherry-pick", "--skip")
        finally:
            self.worktree_remove(path)

    # -- what a worker did ----------------------------------------------
    def dirty_paths(self, worktree: Path, untracked: str = "all") -> list[str]:
        """Modified, staged and untracked paths (not ignored ones) of a worktree;
        `untracked="normal"`: an untracked directory as one entry (`dir/`), cheaper."""
        out = self.run("status", "--porcelain=v1", "-z", f"--untracked-files={untracked}", cwd=worktree)
        paths, entries = [], out.split("\0")
        i = 0
        while i < len(entries):
            entry = entries[i]
            if len(entry) > 3:
                paths.append(entry[3:])
                if entry[0] in "RC":  # renames carry their source as the next entry
                    i += 1
            i += 1
        return paths

    def commit_count(self, base: str, tip: str) -> int:
        return int(self.run("rev-list", "--count", f"{base}..{tip}", "--").strip() or 0)

    def commits(self, base: str, tip: str, limit: int = 100) -> list[dict[str, str]]:
        out = self.run("log", f"--max-count={limit}", "--format=%H%x1f%s", f"{base}..{tip}", "--")
        return [dict(zip(("sha", "subject"), line.split("\x1f", 1))) for line in out.splitlines() if line]

    def changed_files(self, base: str, tip: str) -> list[str]:
        """The paths a diff from `base` to `tip` touches (a rename as both of its paths)."""
        out = self.run("diff", "--name-only", "-z", "--no-renames", base, tip, "--")
        return [path for path in out.split("\0") if path]

    def numstat(self, base: str, tip: str) -> list[dict[str, object]]:
        out = self.run("diff", "--numstat", "-z", "--no-renames", base, tip, "--")
        files: list[dict[str, object]] = []
        for entry in out.split("\0"):
            parts = entry.split("\t", 2)
            if len(parts) == 3:
                added, deleted, path = parts
                files.append({"path": path, "added": int(added) if added.isdigit() else None,
                              "deleted": int(deleted) if deleted.isdigit() else None})
        return files

    def diff(self, *args: str, cwd: Path | None = None) -> str:
        return self.run("diff", *args, cwd=cwd)

    def unmerged_count(self, tip: str, branch: str | None = None) -> int:
        """Commits of `tip` reachable from no branch (other than `branch`), tag or remote ref."""
        exclude = [f"--exclude={branch}"] if branch else []
        out = self.run("rev-list", "--count", tip, "--not", *exclude, "--branches", "--tags", "--remotes")
        return int(out.strip() or 0)

    def snapshot(self, worktree: Path, exclude: list[str], message: str) -> str | None:
        """A commit of the worktree's uncommitted state on top of its HEAD, made in a
        private index so the worktree's own index is untouched. None if clean."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="envoy-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            self.run("read-tree", "HEAD", cwd=worktree, env=env)
            excludes = [f":(exclude,literal){p}" for p in exclude]
            self.run("add", "--all", "--", ".", *excludes, cwd=worktree, env=env)
            tree = self.run("write-tree", cwd=worktree, env=env).strip()
        head = self.run("rev-parse", "HEAD", cwd=worktree).strip()
        if tree == self.run("rev-parse", "HEAD^{tree}", cwd=worktree).strip():
            return None
        return self.run("commit-tree", tree, "-p", head, "-m", message, cwd=worktree,
                        env={"GIT_AUTHOR_NAME": "envoy", "GIT_AUTHOR_EMAIL": "envoy@localhost",
                             "GIT_COMMITTER_NAME": "envoy", "GIT_COMMITTER_EMAIL": "envoy@localhost"}).strip()

    # -- a scratch repository (envoy demo) and a stand-in agent's commits --------
    def init_repository(self, branch: str, name: str, email: str) -> None:
        """A new repository in `cwd` on `branch`, with an identity of its own: the demo
        runs on machines where no git identity is configured, and sets none globally."""
        self.run("init", "-q")
        self.run("symbolic-ref", "HEAD", f"refs/heads/{branch}")
        self.run("config", "user.name", name)
        self.run("config", "user.email", email)

    def commit_all(self, message: str, cwd: Path | None = None) -> str:
        """`git add -A && git commit`, as an agent commits its work; the new commit."""
        self.run("add", "-A", cwd=cwd)
        self.run("commit", "-q", "-m", message, cwd=cwd)
        return self.run("rev-parse", "HEAD", cwd=cwd).strip()

    def ignored_among(self, toplevel: Path, paths: list[str]) -> set[str]:
        """Which of `paths` git ignores (by any .gitignore, info/exclude, core.excludesFile)."""
        found: set[str] = set()
        for i in range(0, len(paths), 500):  # argv stays small whatever the count
            # one path a line (-z needs --stdin); a path git must quote matches none: not copied
            out = self.run("check-ignore", "--", *paths[i:i + 500], cwd=toplevel, ok=(0, 1))
            found.update(p for p in out.split("\n") if p)
        return found

    # -- a shared remote: the data plane of workers that run elsewhere (executors/) --
    def remote_url(self, name: str) -> str | None:
        """The fetch URL of remote `name`, or None if there is no such remote."""
        code, out, _ = self._git("remote", "get-url", "--", name)
        return out.strip() or None if code == 0 else None

    def ls_remote(self, url: str, *patterns: str, cwd: Path | None = None) -> dict[str, str]:
        """ref -> sha of the remote's refs matching `patterns`."""
        out = self.run("ls-remote", "--", url, *patterns, cwd=cwd)
        found = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            if ref:
                found[ref] = sha
        return found

    def fetch_refs(self, url: str, refspecs: list[str], cwd: Path | None = None) -> None:
        self.run("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", url, *refspecs, cwd=cwd)

    def version(self) -> tuple[int, int]:
        """git's (major, minor) version; (0, 0) if it does not say."""
        found = re.search(r"(\d+)\.(\d+)", self.run("version"))
        return (int(found.group(1)), int(found.group(2))) if found else (0, 0)

    def fetch_partial(self, remote: str, refspecs: list[str], cwd: Path | None = None) -> bool:
        """Fetch `refspecs` from the configured remote `remote` without blobs
        (--filter=blob:none). git registers `remote` as the repository's promisor and
        fetches the blobs it then needs from it on demand (a checkout's in one batch).
        False when the server does not allow filters: git then says so and fetches
        everything, and the repository is not left marked partial (unless it was)."""
        was_partial = self.run("config", "--type=bool", "--get", f"remote.{remote}.promisor", cwd=cwd,
                               ok=(0, 1)).strip() == "true"
        code, _, err = self._git("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=blob:none",
                                 "--", remote, *refspecs, cwd=cwd)
        if code != 0:
            raise GitError(("fetch", remote, *refspecs), err, code)
        if "filtering not recognized by server" not in err:
            return True
        if not was_partial:  # a plain full copy, as it would be without the filter
            for key in (f"remote.{remote}.promisor", f"remote.{remote}.partialclonefilter", "extensions.partialclone"):
                self.run("config", "--unset-all", key, cwd=cwd, ok=(0, 5))
        return False

    def push_refs(self, url: str, refspecs: list[str], cwd: Path | None = None) -> None:
        """Push exactly `refspecs` (never a branch or tag of the user's by default rules)."""
        self.run("push", "--quiet", "--no-verify", "--", url, *refspecs, cwd=cwd)

    def swap_remote_ref(self, url: str, ref: str, new: str | None, expect: str, cwd: Path | None = None) -> bool:
        """Compare-and-swap one ref of the remote: set it to `new` (delete it if None) only
        if it still points at `expect` (a lease, checked by the remote under its ref lock).
        False if it did not (moved, or gone); raises for anything else (unreachable)."""
        return ref in self.swap_remote_refs(url, [(ref, new, expect)], cwd=cwd)

    def swap_remote_refs(self, url: str, swaps: list[tuple[str, str | None, str]],
                         cwd: Path | None = None) -> set[str]:
        """swap_remote_ref for many refs (ref, new or None, expected) in one push, each on
        its own: the refs that were swapped."""
        if not swaps:
            return set()
        args = ("push", "--porcelain", "--no-verify", *(f"--force-with-lease={r}:{e}" for r, _, e in swaps),
                "--", url, *(f"{n or ''}:{r}" for r, n, _ in swaps))
        code, out, err = self._git(*args, cwd=cwd)
        done, said = set(), False
        for line in out.splitlines():  # "<flag>\t<from>:<to>\t<summary>": "!" is a refusal
            flag, _, rest = line.partition("\t")
            if not rest or ":" not in rest.partition("\t")[0]:
                continue
            said = True
            if flag != "!":
                done.add(rest.partition("\t")[0].rpartition(":")[2])
        if code != 0 and not said:
            raise GitError(args, err, code)
        return done

    def commit_files(self, files: dict[str, bytes], parents: list[str], message: str, cwd: Path | None = None) -> str:
        """A commit whose tree holds exactly `files` (name -> content), made in a private
        index, on no branch; its sha (the caller puts it on a ref)."""
        import tempfile

        with tempfile.TemporaryDirectory(prefix="envoy-tree-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            for name, data in sorted(files.items()):
                blob = Path(tmp) / "blob"
                blob.write_bytes(data)
                sha = self.run("hash-object", "-w", "--", str(blob), cwd=cwd).strip()
                self.run("update-index", "--add", "--cacheinfo", f"100644,{sha},{name}", cwd=cwd, env=env)
            tree = self.run("write-tree", cwd=cwd, env=env).strip()
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.run(*args, "-m", message, cwd=cwd, env=ENVOY_IDENTITY).strip()

    def commit_files_many(self, commits: list[tuple[dict[str, bytes], list[str], str]]) -> list[str]:
        """commit_files for many commits, (files, parents, message) each, in three git
        processes however many there are (a batch of 100 job commits would be 600):
        every blob, then every tree, then every commit written by one `hash-object -w`
        each, the trees and commits as git's own object text. By envoy's identity, at
        this second; their shas, in order (the caller puts them on refs)."""
        import tempfile

        if not commits:
            return []
        with tempfile.TemporaryDirectory(prefix="envoy-trees-") as tmp:
            def write(kind: str, datas: list[bytes]) -> list[str]:
                paths = []
                for i, data in enumerate(datas):
                    path = Path(tmp) / f"{kind}-{i}"
                    path.write_bytes(data)
                    paths.append(str(path))
                return self.run("hash-object", "-t", kind, "-w", "--no-filters", "--", *paths).split()

            names = [sorted(files, key=lambda n: n.encode()) for files, _, _ in commits]
            blobs = iter(write("blob", [files[n] for (files, _, _), ns in zip(commits, names) for n in ns]))
            trees = write("tree", [b"".join(b"100644 " + n.encode() + b"\0" + bytes.fromhex(next(blobs)) for n in ns)
                                   for ns in names])
            who = f"envoy <envoy@localhost> {int(time.time())} +0000"
            return write("commit", [(f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
                                     + f"author {who}\ncommitter {who}\n\n{message}\n").encode()
                                    for tree, (_, parents, message) in zip(trees, commits)])

    def file_at(self, commit: str, name: str, cwd: Path | None = None) -> str | None:
        """The text of file `name` in `commit`, or None if it has none."""
        code, out, _ = self._git("cat-file", "blob", f"{commit}:{name}", cwd=cwd)
        return out if code == 0 else None

    def first_parent(self, commit: str, cwd: Path | None = None) -> str:
        return self.run("rev-parse", "--verify", "--quiet", f"{commit}^1^{{commit}}", cwd=cwd).strip()


ENVOY_IDENTITY = {"GIT_AUTHOR_NAME": "envoy", "GIT_AUTHOR_EMAIL": "envoy@localhost",
                  "GIT_COMMITTER_NAME": "envoy", "GIT_COMMITTER_EMAIL": "envoy@localhost"}

# The post-commit hook of a remote worker's checkout (executors/node.py): every commit
# is pushed as it is made, so a node that dies loses no committed work. Shell text run
# by git; it reads where to push from the environment the node gives the agent.
PUSH_ON_COMMIT_HOOK = """#!/bin/sh
# envoy: push each commit of a remote worker as it is made
[ -n "$ENVOY_PUSH_URL" ] && [ -n "$ENVOY_PUSH_REF" ] || exit 0
git push --quiet --no-verify --force -- "$ENVOY_PUSH_URL" "HEAD:$ENVOY_PUSH_REF" >/dev/null 2>&1 || \\
  echo "envoy: pushing $(git rev-parse --short HEAD) failed; it is pushed again at the end" >&2
exit 0
"""


# -- moving a checked-out branch (landing/target.py) ----------------------------
def git_paths(git: Git, worktree: Path, *names: str) -> dict[str, Path]:
    """Where `names` live in `worktree`'s git dir (`git rev-parse --git-path`), absolute."""
    args = [a for name in names for a in ("--git-path", name)]
    out = git.run("rev-parse", *args, cwd=worktree).splitlines()
    return {name: worktree / p for name, p in zip(names, out)}  # an absolute p stays itself


def symbolic_head(git: Git, worktree: Path) -> str | None:
    """The ref `worktree`'s HEAD points at (refs/heads/...), None when detached."""
    return git.run("symbolic-ref", "-q", "HEAD", cwd=worktree, ok=(0, 1)).strip() or None


def added_paths(git: Git, old: str, new: str) -> list[str]:
    """Paths `new` has that `old` has not (at that exact path)."""
    out = git.run("diff", "--name-only", "-z", "--no-renames", "--diff-filter=A", old, new, "--")
    return [p for p in out.split("\0") if p]


def untracked_among(git: Git, worktree: Path, paths: list[str]) -> list[str]:
    """Untracked files (ignored ones too: no exclude rules are given) at `paths` or under
    them, in `worktree`; the paths taken literally."""
    found: list[str] = []
    for i in range(0, len(paths), 500):  # well under the argument limit
        out = git.run("--literal-pathspecs", "ls-files", "-z", "--others", "--", *paths[i:i + 500], cwd=worktree)
        found += [p for p in out.split("\0") if p]
    return found


def two_tree_update(git: Git, worktree: Path, old: str, new: str) -> None:
    """Update `worktree`'s index and files from commit `old` to `new` (git read-tree -m -u,
    a two-tree merge): local changes are carried over, or git refuses, changing nothing,
    where they would be overwritten. It does not protect ignored files: check them first."""
    git.run("read-tree", "-m", "-u", old, new, cwd=worktree)


def restore_uncommitted(git: Git, worktree: Path, snapshot: str) -> None:
    """Bring a snapshot (`Git.snapshot`: a commit on top of the worktree's HEAD) back as
    uncommitted changes in `worktree`, whose HEAD and index stay where they are: files it
    added come back untracked, files it deleted stay deleted. The worktree must be clean."""
    two_tree_update(git, worktree, "HEAD", snapshot)
    git.run("reset", "--quiet", "--mixed", cwd=worktree)


def unsparse(git: Git, worktree: Path) -> None:
    """Make a worktree just added (--no-checkout) a full one: `git worktree add` copies
    the current checkout's sparse-checkout cone into it. With per-worktree config (what
    `git sparse-checkout` sets up) it is switched off in this worktree's own config;
    with the older shared `core.sparseCheckout`, this worktree's copy of the patterns
    goes, and without patterns git checks out everything. Nothing else is touched."""
    def flag(key: str) -> bool:
        return git.run("config", "--type=bool", "--get", key, cwd=worktree, ok=(0, 1)).strip() == "true"

    if not flag("core.sparseCheckout"):
        return
    if flag("extensions.worktreeConfig"):
        git.run("config", "--worktree", "core.sparseCheckout", "false", cwd=worktree)
    else:
        git_paths(git, worktree, "info/sparse-checkout")["info/sparse-checkout"].unlink(missing_ok=True)


# -- submodule commits a worker made (worker/submodules.py) -----------------------
def gitlinks_changed(git: Git, base: str | None, tip: str) -> list[tuple[str, str]]:
    """(path, commit) of each submodule `tip` points at differently from `base` (every
    one, without a base)."""
    if base is None:
        out = git.run("ls-tree", "-r", "-z", tip)
        return [(line.partition("\t")[2], line.split()[2]) for line in out.split("\0")
                if line.startswith("160000 ")]
    out = git.run("diff", "--raw", "-z", "--no-renames", "--no-abbrev", base, tip, "--")
    fields = out.split("\0")
    found = []
    for meta, path in zip(fields[0::2], fields[1::2]):
        parts = meta.split()
        if len(parts) == 5 and parts[1] == "160000" and parts[4] != "D":
            found.append((path, parts[3]))
    return found


def submodule_names(git: Git, tip: str) -> dict[str, str]:
    """Submodule path -> name, from `tip`'s .gitmodules ({} without one)."""
    out = git.run("config", "--blob", f"{tip}:.gitmodules", "-z", "--get-regexp", r"^submodule\..*\.path$",
                  ok=(0, 1, 128))
    names = {}
    for entry in out.split("\0"):
        key, _, path = entry.partition("\n")
        if key.startswith("submodule.") and key.endswith(".path"):
            names[path] = key[len("submodule."):-len(".path")]
    return names


def has_commit(git: Git, git_dir: Path, sha: str) -> bool:
    return git._status(f"--git-dir={git_dir}", "cat-file", "-e", f"{sha}^{{commit}}") == 0


def fetch_commit(git: Git, into: Path, source: Path, sha: str, ref: str) -> None:
    """Fetch commit `sha` from repository `source` into the one at git dir `into`, under
    `ref` (upload-pack is told to give a commit no ref of `source` points at)."""
    git.run(f"--git-dir={into}", "-c", "uploadpack.allowAnySHA1InWant=true", "fetch", "--quiet", "--no-tags",
            "--no-write-fetch-head", "--", str(source), f"{sha}:{ref}")
