"""The interface every executor offers (see __init__.py). A verb asks a record's
executor; it never asks which executor that is."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from envoy.errors import EnvoyError
    from envoy.worker.record import Options, Record
    from envoy.worker.store import State
    from envoy.worker.workspace import Workspace


class Executor(Protocol):
    name: str

    def prepare(self, ws: Workspace, record: Record, where: str | None, remote: str | None) -> None:
        """Check where the new worker goes and fill the record's executor fields; creates nothing."""

    def start(self, ws: Workspace, record: Record, task: str, *, queued: bool) -> tuple[Record, int | None]:
        """Start (or queue) the worker: its record, and its queue position if queued here.
        Called under the launch mutex, with the task written."""

    def start_many(self, ws: Workspace, records: list[Record],
                   tasks: list[str]) -> list[tuple[Record, EnvoyError | None]]:
        """start() for a batch (spawn --batch), in one go, under the launch mutex with the
        tasks written: each record, and the error that kept it from starting if one did
        (it is then recorded failed). Refuses (raises) with nothing recorded if the
        batch cannot start at all."""

    def poll(self, state: State, records: list[Record]) -> list[Record]:
        """The records, their state made exact (ends recorded): many at once, in one
        look at the executor (one request for a whole fleet on a cluster)."""

    def relaunch(self, ws: Workspace, record: Record, task: str, options: Options | None = None,
                 branches: dict[str, str] | None = None) -> Record:
        """Start the worker's next run on `task` in its session (resume, land --repair).
        `branches` (name -> commit) the task refers to must exist where it runs."""

    def check_resumable(self, record: Record) -> None:
        """Refuse (EnvoyError) a resume of a worker that cannot be resumed."""

    def stop(self, ws: Workspace, record: Record) -> bool:
        """Ask a running worker to stop (its end is recorded as stopped); False if it
        cannot be asked (its process is not envoy's)."""

    def stop_many(self, ws: Workspace, records: list[Record]) -> list[Record]:
        """stop() for many workers at once (stop --all of a fleet): those it could ask."""

    def forget(self, ws: Workspace, record: Record) -> None:
        """Drop what the executor keeps of a worker being removed (never its work)."""
