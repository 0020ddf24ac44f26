"""Ray's Job Submission REST API, with the standard library only: envoy imports
no `ray` (Ray is needed on the cluster alone). Every failure is an EnvoyError
that names the address, typed `cluster_unreachable` when the dashboard could not
be reached at all, `cluster_error` when it answered with an error."""
from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from envoy.errors import EnvoyError

TIMEOUT = 15.0  # seconds per request: a cluster that does not answer is reported, not waited on
LOG_TAIL = 64 * 1024  # bytes of a job log's end read for its last action: ~600 of the node's lines
USER_AGENT = "envoy"  # the remote watcher (ray_watch.py) says it is the watcher


def base_url(address: str) -> str:
    """`ray://host:8265`, `http(s)://host:8265` or `host:8265` -> the dashboard's URL.
    Only a host and a port (and a path prefix, as a proxy may need): no credentials."""
    text = address.strip()
    scheme = "http"
    if "://" in text:
        scheme, text = text.split("://", 1)
        scheme = {"ray": "http", "http": "http", "https": "https"}.get(scheme.lower(), "")
    parts = urllib.parse.urlsplit(f"{scheme or 'x'}://{text}")
    if not scheme or not parts.hostname or "@" in text or parts.query or parts.fragment:
        raise EnvoyError("invalid_input", f"{address!r} is not a Ray dashboard address",
                         "use ray://HOST:8265 (or http(s)://HOST:PORT), with no credentials in it "
                         "(a token goes in PARALLEL_RAY_TOKEN)")
    try:
        port = parts.port or 8265
    except ValueError:
        raise EnvoyError("invalid_input", f"{address!r} has no valid port", "e.g. ray://HOST:8265") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


def read_tail(answer: Any, keep: int, chunk: int = 64 * 1024) -> bytes:
    """The last `keep` bytes of a file-like answer, holding at most `keep` + `chunk`."""
    tail = b""
    while True:
        block = answer.read(chunk)
        if not block:
            return tail
        tail = (tail + block)[-keep:]


def logs_string_tail(raw: bytes) -> str:
    """The whole lines at the end of a cut `{"logs": "..."}` answer (`raw` is its last
    bytes): from just after the first newline escape that cannot be the tail of an
    escaped backslash, to the string's end. "" if none is whole or the cut answer does
    not end as that document does."""
    end = raw.rstrip()
    if not end.endswith(b'"}'):
        return ""
    body = end[:-2]
    at = body.find(b"\\n")
    while at == 0 or at > 0 and body[at - 1:at] == b"\\":  # the cut, or `\\n`: maybe a backslash, then n
        at = body.find(b"\\n", at + 2)
    if at < 0:
        return ""
    try:
        text = json.loads(b'"' + body[at + 2:] + b'"')
    except ValueError:
        return ""
    return text if isinstance(text, str) else ""


class RayJobs:
    """One cluster's job API at `url` (from base_url); `token` is sent as a bearer
    token (Ray's token authentication, RAY_AUTH_MODE=token on the cluster)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = TIMEOUT) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, data: bytes | None = None,
                ok404: bool = False) -> Any:
        """The decoded JSON answer (None for 404 when `ok404`, or for an empty body)."""
        return self.request_json(self.send(method, path, body, data, ok404), method, path)

    def send(self, method: str, path: str, body: Any = None, data: bytes | None = None, ok404: bool = False,
             keep: int | None = None) -> bytes | None:
        """The answer's body (None for 404 when `ok404`); only its last `keep` bytes when
        given, read in chunks, so a large answer costs no more memory than that."""
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as answer:
                return answer.read() if keep is None else read_tail(answer, keep)
        except urllib.error.HTTPError as exc:
            if ok404 and exc.code == 404:
                return None
            detail = exc.read(2000).decode("utf-8", "replace").strip().splitlines()
            hint = ("set PARALLEL_RAY_TOKEN to the cluster's token (ray get-auth-token)"
                    if exc.code in (401, 403) else "see the Ray dashboard's logs")
            raise EnvoyError("cluster_error", f"the Ray cluster at {self.url} answered {method} {path} with "
                             f"{exc.code}" + (f": {detail[-1][:300]}" if detail else ""), hint,
                             address=self.url, http_status=exc.code) from None
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", exc)
            raise EnvoyError("cluster_unreachable", f"cannot reach the Ray cluster at {self.url}: {why}",
                             "check that the cluster runs and its dashboard port is reachable from here",
                             address=self.url) from None

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the cluster knows: one request, however many workers."""
        found = self.request("GET", "/api/jobs/")
        return [j for j in found if isinstance(j, dict)] if isinstance(found, list) else []

    def submit(self, spec: dict[str, Any]) -> str:
        answer = self.request("POST", "/api/jobs/", body=spec)
        sid = answer.get("submission_id") if isinstance(answer, dict) else None
        if not isinstance(sid, str):
            raise EnvoyError("cluster_error", f"the Ray cluster at {self.url} accepted a job without naming it",
                             "see the Ray dashboard", address=self.url)
        return sid

    def stop(self, submission_id: str) -> bool:
        answer = self.request("POST", f"/api/jobs/{urllib.parse.quote(submission_id, safe='')}/stop", ok404=True)
        return isinstance(answer, dict) and answer.get("stopped") is True

    def delete(self, submission_id: str) -> None:
        self.request("DELETE", f"/api/jobs/{urllib.parse.quote(submission_id, safe='')}", ok404=True)

    def logs(self, submission_id: str) -> str:
        answer = self.request("GET", f"/api/jobs/{urllib.parse.quote(submission_id, safe='')}/logs", ok404=True)
        logs = answer.get("logs") if isinstance(answer, dict) else None
        return logs if isinstance(logs, str) else ""

    def logs_tail(self, submission_id: str, keep: int = LOG_TAIL) -> str:
        """The end of the job's log: its last whole lines within about `keep` bytes of
        the answer. Ray 2.60 serves the whole log and nothing less over plain HTTP (its
        /logs/tail is a WebSocket that streams the log from its first line), so the
        answer is read through and only its end kept: a chatty job costs the transfer,
        never the memory or the parsing of its whole log."""
        path = f"/api/jobs/{urllib.parse.quote(submission_id, safe='')}/logs"
        raw = self.send("GET", path, ok404=True, keep=keep + 1)
        if raw is None or len(raw) <= keep:
            answer = self.request_json(raw, "GET", path)
            logs = answer.get("logs") if isinstance(answer, dict) else None
            return logs if isinstance(logs, str) else ""
        return logs_string_tail(raw)

    def request_json(self, raw: bytes | None, method: str, path: str) -> Any:
        if raw is None or not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise EnvoyError("cluster_error", f"the Ray cluster at {self.url} answered {method} {path} with "
                             "something that is not JSON", "is this address a Ray dashboard?",
                             address=self.url) from None

    def has_package(self, uri: str) -> bool:
        """Whether the cluster holds the package `gcs://_ray_pkg_<hash>.zip`."""
        protocol, name = uri.split("://", 1)
        try:
            self.request("GET", f"/api/packages/{protocol}/{name}")
        except EnvoyError as exc:
            if exc.extra.get("http_status") == 404:
                return False
            raise
        return True

    def upload_package(self, uri: str, data: bytes) -> None:
        protocol, name = uri.split("://", 1)
        self.request("PUT", f"/api/packages/{protocol}/{name}", data=data)


def client(cluster: str) -> RayJobs:
    """The cluster's API; PARALLEL_RAY_TOKEN (the environment only: never a settings
    file, which is committed) is sent as the bearer token of Ray's token authentication."""
    return RayJobs(base_url(cluster), os.environ.get("PARALLEL_RAY_TOKEN") or None)
