"""Ray's Job Submission REST API, with the standard library only: envoy imports
no `ray` (Ray is needed on the cluster alone). Every failure is an EnvoyError
that names the address, typed `cluster_unreachable` when the dashboard could not
be reached at all, `cluster_error` when it answered with an error."""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from envoy.errors import EnvoyError

TIMEOUT = 15.0  # seconds per request: a cluster that does not answer is reported, not waited on
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
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as answer:
                raw = answer.read()
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
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise EnvoyError("cluster_error", f"the Ray cluster at {self.url} answered {method} {path} with "
                             "something that is not JSON", "is this address a Ray dashboard?",
                             address=self.url) from None

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the cluster knows: one request, however many workers."""
        found = self.request("GET", "/api/jobs/")
        return [j for j in found if isinstance(j, dict)] if isinstance(found, list) else []

    def job(self, submission_id: str) -> dict[str, Any] | None:
        found = self.request("GET", f"/api/jobs/{urllib.parse.quote(submission_id, safe='')}", ok404=True)
        return found if isinstance(found, dict) else None

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
