"""A real two-node Ray cluster for tests, in network and PID namespaces of its own.

`unshare -n -p -f --mount-proc` starts a holder (PID 1 of the new namespaces,
`sleep infinity` once loopback is up); the head (no worker resource) and a
second node (the only one with `envoy_worker`, its own ports) start inside it
through `nsenter`, and everything on 127.0.0.1. The test process itself joins
the namespace's network (setns on its own thread, and so on everything it
starts after) while the cluster is in use, so envoy, the fake model server and
the cluster all talk over that loopback and nothing leaves it. Killing the
holder (SIGKILL) ends every process in the namespace.

The cluster runs with Ray's token authentication (RAY_AUTH_MODE=token): envoy
must send PARALLEL_RAY_TOKEN for any request to succeed.
"""
from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Mapping

RAY_VENV = os.environ.get("ENVOY_RAY_VENV")  # a venv with ray[default], if not the test run's own
CLONE_NEWNET = 0x40000000
DASHBOARD = 8265
GCS = 6380
TOKEN = "envoy-test-token-0123456789abcdef"
# The second node's own ports: two nodes on one host must not share them (see shared/RAY.md).
NODE_PORTS = {"--dashboard-agent-listen-port": 52366, "--dashboard-agent-grpc-port": 52367,
              "--metrics-export-port": 52368, "--node-manager-port": 52369, "--object-manager-port": 52370,
              "--runtime-env-agent-port": 52371}


def ray_bin() -> Path | None:
    """The `ray` of a Python that has ray[default]: $ENVOY_RAY_VENV's, else the test run's own
    (tests/requirements.txt installs it), else one on PATH."""
    own = Path(sys.executable).parent / "ray"
    for candidate in ([Path(RAY_VENV) / "bin" / "ray"] if RAY_VENV else []) + [own]:
        if candidate.is_file():
            return candidate
    found = shutil.which("ray")
    return Path(found) if found else None


def _setns(path: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


class RayCluster:
    def __init__(self, workdir: Path, node_env: Mapping[str, str], worker_slots: int = 2) -> None:
        self.workdir = workdir
        self.node_env = dict(node_env)
        self.slots = worker_slots
        self.ray = ray_bin()
        self.holder: subprocess.Popen[bytes] | None = None
        self.pid = 0  # the holder's PID 1, seen from here
        self._home_net: int | None = None
        self.url = f"http://127.0.0.1:{DASHBOARD}"
        self.address = f"ray://127.0.0.1:{DASHBOARD}"

    # -- the namespace --------------------------------------------------
    def enter(self) -> "RayCluster":
        """Make the namespaces and join their network (Ray is started by start_ray)."""
        assert self.ray is not None, "no ray[default] installed (tests/requirements.txt has it)"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.holder = subprocess.Popen(
            ["unshare", "-n", "-p", "-f", "--mount-proc", "sh", "-c", "ip link set lo up && exec sleep infinity"],
            start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children").read_text().split()
            if children and "sleep" in Path(f"/proc/{children[0]}/cmdline").read_bytes().decode():
                self.pid = int(children[0])
                break
            time.sleep(0.05)
        assert self.pid, "the namespace holder did not start"
        self._home_net = os.open("/proc/self/ns/net", os.O_RDONLY)
        _setns(f"/proc/{self.pid}/ns/net")
        return self

    def run(self, argv: list[str], env: Mapping[str, str] | None = None, timeout: float = 180,
            ) -> subprocess.CompletedProcess[str]:
        """Run argv inside the namespaces (its PID namespace too: it dies with them)."""
        return subprocess.run(["nsenter", "-t", str(self.pid), "-n", "-p", "-m", f"--wd={self.workdir}", *argv],
                              env=dict(env) if env is not None else None, capture_output=True, text=True,
                              timeout=timeout)

    def start_ray(self) -> None:
        env = {**os.environ, **self.node_env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN,
               "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1"}
        env["PATH"] = f"{self.ray.parent}:{env.get('PATH', '')}" if self.ray else env.get("PATH", "")
        temp = self.workdir / "ray"
        head = self.run([str(self.ray), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={GCS}",
                         "--dashboard-host=127.0.0.1", f"--dashboard-port={DASHBOARD}", "--num-cpus=1",
                         "--include-dashboard=true", "--disable-usage-stats", f"--temp-dir={temp}"], env)
        assert head.returncode == 0, head.stdout + head.stderr
        node = self.run([str(self.ray), "start", f"--address=127.0.0.1:{GCS}", "--node-ip-address=127.0.0.1",
                         f"--num-cpus={self.slots}", f"--resources={json.dumps({'envoy_worker': self.slots})}",
                         *(f"{k}={v}" for k, v in NODE_PORTS.items()), "--disable-usage-stats", f"--temp-dir={temp}"], env)
        assert node.returncode == 0, node.stdout + node.stderr
        self.wait_ready()

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                req = urllib.request.Request(f"{self.url}/api/jobs/", headers={"Authorization": f"Bearer {TOKEN}"})
                with urllib.request.urlopen(req, timeout=5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    # -- faults ---------------------------------------------------------
    def worker_raylet(self) -> int | None:
        """PID of the worker node's raylet: the raylet started with that node's own port."""
        marker = f"--node_manager_port={NODE_PORTS['--node-manager-port']}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"raylet/raylet" in cmdline.split(b"\0")[0] and marker in cmdline:
                return int(entry.name)
        return None

    def kill_worker_node(self) -> None:
        pid = self.worker_raylet()
        assert pid is not None, "no raylet of the worker node"
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """End the cluster and everything in the namespace; this process goes home."""
        if self._home_net is not None:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.setns(self._home_net, CLONE_NEWNET)
            os.close(self._home_net)
            self._home_net = None
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)  # PID 1 of the namespace: the kernel ends the rest
            except ProcessLookupError:
                pass
        if self.holder is not None:
            self.holder.wait(timeout=30)
            self.holder = None
