"""Git as the data plane of Ray workers: the remote the nodes share, envoy.pyz as
the jobs' package, and fetching a worker's work back (see ray.py for the flow)."""
from __future__ import annotations

import io
import json
import os
import re
import urllib.parse
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from envoy.errors import EnvoyError
from envoy.git import Git

if TYPE_CHECKING:
    from envoy.worker.record import Record
    from envoy.worker.store import State

PREFIX = "refs/envoy/workers"


def remote_url(git: Git, remote: str) -> str:
    """The URL of `remote` (a remote's name, or a URL or path): what the nodes fetch
    from and push to. It is on the job's command line, so it may hold no password."""
    if not remote or remote.startswith("-") or any(ord(c) < 32 for c in remote):
        raise EnvoyError("invalid_input", f"--remote {remote!r} is not a remote", "use a remote's name or URL")
    url = git.remote_url(remote)
    if url is None:
        if "://" in remote or re.match(r"^[\w.-]+@[\w.-]+:", remote):
            url = remote
        elif os.path.isdir(remote):
            url = os.path.abspath(remote)
        else:
            raise EnvoyError("not_found", f"--remote {remote!r} is neither a remote of this repository nor a URL",
                             "add it (git remote add origin URL), or pass --remote URL")
    elif "://" not in url and ":" not in url.split("/")[0]:
        url = os.path.abspath(os.path.join(git.toplevel(), url))  # a path, relative to the checkout
    if urllib.parse.urlsplit(url).password:
        raise EnvoyError("invalid_input", "the remote's URL holds a password, which would be shown on the "
                         "job's command line to anyone who can list the cluster's jobs",
                         "use a URL without credentials; give the nodes their own (an SSH key, a credential helper)")
    return url


def package(state: State) -> tuple[str, bytes]:
    """(gcs:// URI, zip bytes) of the working_dir package: envoy.pyz alone, named by
    its content hash, so the cluster stores each build once."""
    import hashlib

    from envoy import pyz

    running = pyz.running()
    if running is not None:
        data = running.read_bytes()
    else:  # from a source tree: the zipapp it would build, built once per state of the sources
        import envoy

        entries = pyz.tree(Path(envoy.__file__).parent.parent)
        stamp = hashlib.sha256(repr(sorted((n, p.stat().st_mtime_ns, p.stat().st_size) for n, p in entries))
                               .encode()).hexdigest()[:16]
        built = state.root / "ray" / f"envoy-{stamp}.pyz"
        if not built.is_file():
            pyz.write(built, entries)
        data = built.read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
        info = zipfile.ZipInfo("envoy.pyz", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o100755 << 16
        archive.writestr(info, data)
    blob = out.getvalue()
    return f"gcs://_ray_pkg_{hashlib.sha256(blob).hexdigest()[:32]}.zip", blob


def fetch_work(git: Git, record: Record) -> dict[str, Any] | None:
    """Fetch the worker's branch (as its local branch), its uncommitted work and its run's
    record from the remote; the run's ending, or None if its node never pushed one."""
    name, run = record["name"], int(record.get("run") or 1)
    prefix = f"{PREFIX}/{name}"
    url = record["remote_url"]
    there = git.ls_remote(url, f"{prefix}/*")
    specs = []
    if f"{prefix}/head" in there:
        specs.append(f"+{prefix}/head:refs/heads/{record['branch']}")
    if f"{prefix}/run-{run}" in there:
        specs.append(f"+{prefix}/run-{run}:refs/envoy/runs/{name}/{run}")
    if f"{prefix}/wip" in there:
        specs.append(f"+{prefix}/wip:refs/envoy/wip/{name}")
    if specs:
        git.fetch_refs(url, specs)
    base = record.get("base_sha")
    if f"{prefix}/head" not in there and base and git.branch_tip(record["branch"]) is None:
        git.update_ref(f"refs/heads/{record['branch']}", base)  # no commit pushed: at its base
    if f"{prefix}/run-{run}" not in there:
        return None
    return json_object(git.file_at(f"refs/envoy/runs/{name}/{run}", "ending.json"))


def last_wip(git: Git, name: str, run: int) -> str | None:
    """The uncommitted work run `run` left (its ending names it), if it was fetched here:
    a resume restores it on the node, as a local worker's worktree still holds it."""
    ending = json_object(git.file_at(f"refs/envoy/runs/{name}/{run}", "ending.json"))
    wip = ending.get("wip")
    if not isinstance(wip, str) or not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", wip):
        return None
    return wip if git.resolve_commit(wip) == wip else None


def json_object(text: str | None) -> dict[str, Any]:
    try:
        found = json.loads(text or "")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}
