"""A scriptable fake of the Anthropic Messages API, for running the real `claude` CLI.

The server plays *scripts*: a script is a list of steps, and each main-loop API
call of a Claude Code session consumes one step.  A session picks its script
with a marker in its prompt (``[script:NAME]``, see :func:`marker`); sessions
without a marker play the ``default`` script.  When a script runs out the model
answers ``done``.

    with FakeModel() as fake:
        fake.script("commit", [bash("git commit ..."), text("Committed.")])
        run claude with ANTHROPIC_BASE_URL=fake.url and a prompt containing
        marker("commit")
        fake.tool_results("commit")  # what the tools answered

What the CLI (2.1.197) sends, as measured:
- A ``HEAD /`` at startup (answered 404; the CLI does not care).
- Main-loop calls: ``POST /v1/messages?beta=true``, ``stream: true``, a non-empty
  ``tools`` list, header ``X-Claude-Code-Session-Id`` (also inside
  ``metadata.user_id``).  ``messages`` may hold ``role: "system"`` entries.
- Side calls, e.g. session-title generation (only without
  ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``): same model, ``tools: []``, an
  ``output_config.format`` JSON schema, and the prompt quoted inside the user
  text, so the marker alone cannot tell them apart: the empty tool list does.
- With ``--json-schema``: a ``StructuredOutput`` tool in ``tools`` whose
  ``input_schema`` is the schema; the session ends as soon as the model calls it
  (no further request), and the result carries the input as
  ``structured_output``.  A model that answers in text instead gets one
  synthetic "[structured-output-enforce] You MUST call the StructuredOutput
  tool" user message, then its next text ends the run without structured output.
- Subagent (Agent tool) calls: same session header, tools, and
  ``cc_is_subagent=true`` in the system prompt's billing line; their prompt
  has no marker, so they play on in the session's script.  Put a marker in
  the Agent call's prompt to give the subagent a script of its own: on
  2.1.332 an Agent call may run in the background, and the parent's next
  request can come before the subagent's.

What 2.1.332 changes (so nothing here reads the history by position):
- Consecutive assistant messages are merged (2.1.197 merges a resumed
  session's whole history), user messages carry extra ``<system-reminder>``
  text blocks, and ``role: "system"`` messages appear in ``messages``
  (a blocking PostToolUse hook's stderr arrives in one).
- So a request's ``tool_results`` are the tool_result blocks, anywhere in
  the history, whose tool_use id the session had not answered before;
  ``user_text`` is the user/system text after the last assistant message;
  ``told`` is everything the model was told.  Steps are consumed one per
  main-loop request, never located by message position.
- A session's tools may include ``defer_loading`` entries
  (``DeferredToolPlaceholder``) and ``ToolSearch``, ``ListAgents``, ``Workflow``.

Stdlib only, so that it runs wherever pytest does.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Optional, Union
from urllib.parse import urlsplit

DEFAULT_SCRIPT = "default"
SCRIPT_MARKER = re.compile(r"\[script:([A-Za-z0-9_.\-]+)\]")
SIDE_TEXT = "ok"  # what side requests (titles, quota checks, ...) get
DONE_TEXT = "done"  # what the model says once its script is exhausted
FAKE_MODEL_NAME = "claude-fake-model"


def marker(name: str) -> str:
    """The text to put in a prompt so that the session plays script `name`."""
    return f"[script:{name}]"


# --------------------------------------------------------------------------
# Steps


@dataclass(frozen=True)
class ToolCall:
    """One tool_use block; its id is made fresh each time it is played."""

    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One assistant message: optional text, then zero or more tool calls."""

    text: Optional[str] = None
    calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Delay:
    """Wait, then answer with `then` (or, if None, with the script's next step).

    The wait ends early when `until` is set or the server stops, so a test
    can hold a session mid-turn and release it.
    """

    seconds: float
    then: Optional["Step"] = None
    until: Optional[threading.Event] = None


@dataclass(frozen=True)
class HttpError:
    """Answer with an HTTP error status and an Anthropic-shaped error body."""

    status: int = 500
    message: str = "scripted failure"
    error_type: Optional[str] = None  # None: derived from the status

    def body(self) -> dict[str, Any]:
        kind = self.error_type or _ERROR_TYPES.get(self.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": self.message}}


# A callable step computes the reply from the request it answers (see
# RequestRecord: .tool_results, .last_tool_result) - e.g. to react to hook
# feedback.  It may return any other kind of step.
DynamicStep = Callable[["RequestRecord"], "Step"]
Step = Union[Reply, Delay, HttpError, DynamicStep]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def text(answer: str) -> Reply:
    """A final answer (stop_reason end_turn)."""
    return Reply(text=answer)


def tool(name: str, input: dict[str, Any], text: Optional[str] = None) -> Reply:
    """A call of any tool by its wire name (e.g. "Agent", "Read")."""
    return Reply(text=text, calls=(ToolCall(name, dict(input)),))


def bash(command: str, description: str = "scripted step") -> Reply:
    return tool("Bash", {"command": command, "description": description})


def write(file_path: str, content: str) -> Reply:
    return tool("Write", {"file_path": file_path, "content": content})


def edit(file_path: str, old_string: str, new_string: str, replace_all: bool = False) -> Reply:
    return tool(
        "Edit",
        {
            "file_path": file_path,
            "old_string": old_string,
            "new_string": new_string,
            "replace_all": replace_all,
        },
    )


def structured_output(value: dict[str, Any]) -> Reply:
    """The answer of a `--json-schema` run: the CLI's StructuredOutput tool called with `value`."""
    return tool("StructuredOutput", value)


def tools(*replies: Reply, text: Optional[str] = None) -> Reply:
    """Several tool calls in one assistant message: tools(bash(..), write(..))."""
    calls = tuple(call for reply in replies for call in reply.calls)
    return Reply(text=text, calls=calls)


def delay(
    seconds: float, then: Optional[Step] = None, until: Optional[threading.Event] = None
) -> Delay:
    return Delay(seconds, then, until)


def http_error(
    status: int = 500, message: str = "scripted failure", error_type: Optional[str] = None
) -> HttpError:
    return HttpError(status, message, error_type)


# --------------------------------------------------------------------------
# Request log


@dataclass
class ToolResult:
    tool_use_id: str
    tool_name: Optional[str]  # from the matching tool_use earlier in the conversation
    content: str  # text blocks joined with newlines
    is_error: bool


@dataclass
class RequestRecord:
    """One HTTP request the server saw, and how it was answered."""

    index: int
    method: str
    path: str
    arrived: float  # time.monotonic() on arrival
    finished: Optional[float] = None  # time.monotonic() once the answer was sent
    kind: str = "other"  # "main", "side", "count_tokens" or "other" (any other path)
    session_id: Optional[str] = None  # X-Claude-Code-Session-Id
    subagent: bool = False  # made by an Agent-tool subagent of the session
    script: Optional[str] = None  # the script played; None unless kind == "main"
    step_index: Optional[int] = None  # script position played; None if exhausted
    model: Optional[str] = None
    stream: bool = False
    system: str = ""  # top-level system prompt text
    prompt: str = ""  # text of the first user message
    # Text the CLI sent since the model's last reply: text blocks of the user-
    # and system-role messages after the last assistant message (reminders and
    # hook feedback included), wherever the CLI version put them.
    user_text: str = ""
    # Tool results new in this request (by tool_use id: none this session had
    # sent before), from any message: the CLI may merge or split the history.
    tool_results: list[ToolResult] = field(default_factory=list)
    status: int = 0  # HTTP status answered
    reply: Optional[Reply] = None  # what the model said (ids filled in)
    tool_use_ids: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None  # the parsed request JSON, for anything not lifted out

    @property
    def side(self) -> bool:
        """A model call that plays no script (title generation and the like)."""
        return self.kind == "side"

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools the CLI offered the model in this request."""
        offered = (self.body or {}).get("tools") if isinstance(self.body, dict) else None
        return [str(t.get("name")) for t in offered or [] if isinstance(t, dict)]

    @property
    def told(self) -> str:
        """Everything the model was told in this request besides the system
        prompt: every tool result, and every text block of user- and
        system-role messages (system-reminders, hook feedback, prompts).
        Assert what the model was told here, not where a CLI version put it:
        2.1.197 gives a blocking PostToolUse hook's stderr in a user-message
        system-reminder, 2.1.332 in a system-role message."""
        return _told(self.body) if isinstance(self.body, dict) else ""

    @property
    def last_tool_result(self) -> Optional[ToolResult]:
        return self.tool_results[-1] if self.tool_results else None

    def overlaps(self, other: "RequestRecord") -> bool:
        """Whether the two requests were in flight at the same moment."""
        end_self = self.finished if self.finished is not None else float("inf")
        end_other = other.finished if other.finished is not None else float("inf")
        return self.arrived < end_other and other.arrived < end_self


# --------------------------------------------------------------------------
# Parsing requests


def _block_text(content: Any) -> str:
    """Text of a message content (a string, or a list of blocks)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    parts = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "\n".join(parts)


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []


def _user_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in _messages(body) if m.get("role") == "user"]


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _tool_names(body: dict[str, Any]) -> dict[str, str]:
    """tool_use id -> tool name, over the assistant turns in the history."""
    return {str(block.get("id")): str(block.get("name"))
            for message in _messages(body) if message.get("role") == "assistant"
            for block in _blocks(message) if block.get("type") == "tool_use"}


def _tool_results(body: dict[str, Any]) -> list[ToolResult]:
    """Every tool_result block of the conversation, in order, whichever
    message carries it (FakeModel keeps the ones new to the session)."""
    names = _tool_names(body)
    return [
        ToolResult(
            tool_use_id=str(block.get("tool_use_id")),
            tool_name=names.get(str(block.get("tool_use_id"))),
            content=_block_text(block.get("content")),
            is_error=bool(block.get("is_error", False)),
        )
        for message in _messages(body) if message.get("role") == "user"
        for block in _blocks(message) if block.get("type") == "tool_result"
    ]


def _text_since_reply(body: dict[str, Any]) -> str:
    """Text blocks of the user- and system-role messages after the last assistant message."""
    messages = _messages(body)
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return "\n".join(_block_text(m.get("content")) for m in messages[last + 1:]
                     if m.get("role") in ("user", "system"))


def _told(body: dict[str, Any]) -> str:
    parts = []
    for message in _messages(body):
        if message.get("role") not in ("user", "system"):
            continue
        for block in _blocks(message):
            if block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                parts.append(_block_text(block.get("content")))
    return "\n".join(parts)


def _system_text(body: dict[str, Any]) -> str:
    system = body.get("system")
    return system if isinstance(system, str) else _block_text(system)


def _script_marker(body: dict[str, Any]) -> Optional[str]:
    """The newest [script:NAME] in the user's own text (never in tool results,
    so a tool that echoes a marker cannot switch scripts)."""
    for message in reversed(_user_messages(body)):
        found = SCRIPT_MARKER.findall(_block_text(message.get("content")))
        if found:
            return str(found[-1])
    return None


def _is_side_request(body: dict[str, Any]) -> bool:
    """Main-loop calls carry the tool list; title generation and other
    helper calls send none (measured on 2.1.197: ``tools: []``)."""
    tools_list = body.get("tools")
    return not (isinstance(tools_list, list) and tools_list) or body.get("max_tokens") == 1


def _schema_instance(schema: Any) -> Any:
    """A minimal value satisfying a simple JSON schema, for side requests that
    ask for structured output (the title generator wants {"title": ...})."""
    if not isinstance(schema, dict):
        return SIDE_TEXT
    kind = schema.get("type")
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties") or {}
        required = schema.get("required") or list(props)
        return {key: _schema_instance(props.get(key)) for key in required}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return "Scripted session"


def _side_reply(body: dict[str, Any]) -> Reply:
    output_format = (body.get("output_config") or {}).get("format") or {}
    if isinstance(output_format, dict) and output_format.get("type") == "json_schema":
        return text(json.dumps(_schema_instance(output_format.get("schema"))))
    return text(SIDE_TEXT)


# --------------------------------------------------------------------------
# Responses


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


def _output_tokens(reply: Reply) -> int:
    size = len(reply.text or "") + sum(len(json.dumps(c.input)) for c in reply.calls)
    return 1 + size // 4


def _content_blocks(reply: Reply, ids: list[str]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text is not None:
        blocks.append({"type": "text", "text": reply.text})
    for call, tool_use_id in zip(reply.calls, ids):
        blocks.append({"type": "tool_use", "id": tool_use_id, "name": call.name, "input": call.input})
    return blocks


def _message(reply: Reply, ids: list[str], model: str, final: bool) -> dict[str, Any]:
    """The message JSON; `final` fills content and stop_reason (non-streaming)."""
    usage = {
        "input_tokens": 10,
        "output_tokens": _output_tokens(reply) if final else 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    return {
        "id": _new_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _content_blocks(reply, ids) if final else [],
        "stop_reason": _stop_reason(reply) if final else None,
        "stop_sequence": None,
        "usage": usage,
    }


def _stop_reason(reply: Reply) -> str:
    return "tool_use" if reply.calls else "end_turn"


def _chunks(value: str, parts: int = 2) -> list[str]:
    """Split a delta in pieces so the client really has to concatenate."""
    if len(value) < parts:
        return [value]
    size = -(-len(value) // parts)
    return [value[i : i + size] for i in range(0, len(value), size)]


def _sse_events(reply: Reply, ids: list[str], model: str) -> Iterable[tuple[str, dict[str, Any]]]:
    """The server-sent events of one streamed message, in Anthropic's order."""
    yield "message_start", {"type": "message_start", "message": _message(reply, ids, model, final=False)}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(_content_blocks(reply, ids)):
        start: dict[str, Any]
        if block["type"] == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": piece} for piece in _chunks(block["text"])]
        else:
            start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            deltas = [
                {"type": "input_json_delta", "partial_json": piece}
                for piece in [""] + _chunks(json.dumps(block["input"]))
            ]
        yield "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
        for delta in deltas:
            yield "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {
        "type": "message_delta",
        "delta": {"stop_reason": _stop_reason(reply), "stop_sequence": None},
        "usage": {"output_tokens": _output_tokens(reply)},
    }
    yield "message_stop", {"type": "message_stop"}


# --------------------------------------------------------------------------
# The server


@dataclass
class _Script:
    steps: list[Step]
    shared: bool  # one cursor for all sessions instead of one per session


class _Stopped(Exception):
    """The server stopped while a request was waiting in a delay."""


class FakeModel:
    """A Messages-API server on 127.0.0.1 that plays scripted model turns.

    Thread-safe: the HTTP server runs in a daemon thread, each request in its
    own thread, and the test thread registers scripts and reads the log.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._lock = threading.Condition()
        self._scripts: dict[str, _Script] = {}
        self._cursors: dict[tuple[str, Optional[str]], int] = {}
        self._session_scripts: dict[str, str] = {}
        self._seen_results: dict[str, set[str]] = {}  # session id -> tool_use ids already answered
        self._stopping = threading.Event()
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self.requests: list[RequestRecord] = []
        self.errors: list[str] = []  # harness failures (bad step, bad JSON, ...)

    # -- lifecycle --------------------------------------------------------

    def start(self) -> "FakeModel":
        if self._server is not None:
            return self
        self._stopping.clear()
        server = ThreadingHTTPServer(self._address, _make_handler(self))
        server.daemon_threads = True  # a stuck client must not block stop()
        self._server = server
        # A short poll interval keeps stop() (and so fixture teardown) quick.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-model", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes requests sleeping in a Delay
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._lock.notify_all()

    def __enter__(self) -> "FakeModel":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeModel is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- scripting --------------------------------------------------------

    def script(self, name: str, steps: Iterable[Step], shared: bool = False) -> str:
        """Register (or replace) script `name`; returns its prompt marker.

        Each session (X-Claude-Code-Session-Id) plays the script from the
        start, so several sessions may share one script.  With shared=True
        all sessions consume one list of steps instead (e.g. a run that fails
        and is retried in a new session).
        """
        with self._lock:
            self._scripts[name] = _Script(list(steps), shared)
            for key in [k for k in self._cursors if k[0] == name]:
                del self._cursors[key]
        return marker(name)

    def default_script(self, steps: Iterable[Step], shared: bool = False) -> None:
        """The script of sessions whose prompt has no marker."""
        self.script(DEFAULT_SCRIPT, steps, shared)

    # -- the request log ----------------------------------------------------

    def requests_for(self, script: str) -> list[RequestRecord]:
        """Main-loop requests that played `script`, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.kind == "main" and r.script == script]

    def tool_results(self, script: str) -> list[ToolResult]:
        """Every tool result sent back by sessions playing `script`."""
        return [t for r in self.requests_for(script) for t in r.tool_results]

    def told(self, script: str) -> str:
        """What the model was told, over every request that played `script`."""
        return "\n".join(r.told for r in self.requests_for(script))

    def side_requests(self) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests if r.side]

    def main_requests(self) -> list[RequestRecord]:
        """Every request that played a script, whichever script."""
        with self._lock:
            return [r for r in self.requests if r.kind == "main"]

    def wait_for(self, predicate: Callable[[list[RequestRecord]], bool], timeout: float = 10.0) -> bool:
        """Block until predicate(requests) holds; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(self.requests):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping.is_set():
                    return False
                # Polling too: fields of a record are filled in after arrival.
                self._lock.wait(min(remaining, 0.05))
            return True

    # -- used by the handler ------------------------------------------------

    def _record(self, method: str, path: str) -> RequestRecord:
        with self._lock:
            record = RequestRecord(len(self.requests), method, path, time.monotonic())
            self.requests.append(record)
            self._lock.notify_all()
            return record

    def _finish(self, record: RequestRecord, status: int) -> None:
        with self._lock:
            record.status = status
            record.finished = time.monotonic()
            self._lock.notify_all()

    def _new_tool_results(self, session_id: Optional[str], results: list[ToolResult]) -> list[ToolResult]:
        """The results this session had not sent before: the answers to the
        model's latest tool calls, however the CLI laid out the history."""
        with self._lock:
            seen = self._seen_results.setdefault(session_id or "", set())
            new = [r for r in results if r.tool_use_id not in seen]
            seen.update(r.tool_use_id for r in new)
            return new

    def _error(self, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def _choose_script(self, body: dict[str, Any], session_id: Optional[str]) -> str:
        """Marker in the user's text, else what this session played before
        (a subagent's prompt has no marker), else the default script."""
        name = _script_marker(body)
        with self._lock:
            if name is None and session_id is not None:
                name = self._session_scripts.get(session_id)
            name = name or DEFAULT_SCRIPT
            if session_id is not None:
                self._session_scripts[session_id] = name
            return name

    def _next_step(self, name: str, session_id: Optional[str]) -> tuple[Optional[int], Optional[Step]]:
        """Consume the next step of script `name` for this session."""
        with self._lock:
            script = self._scripts.get(name)
            if script is None:
                return None, None
            key = (name, None if script.shared else session_id)
            position = self._cursors.get(key, 0)
            if position >= len(script.steps):
                return None, None
            self._cursors[key] = position + 1
            return position, script.steps[position]

    def _resolve(self, record: RequestRecord, step: Optional[Step]) -> Union[Reply, HttpError]:
        """Play delays and callables until a reply or an error is left."""
        while True:
            if step is None:
                return text(DONE_TEXT)
            if isinstance(step, (Reply, HttpError)):
                return step
            if isinstance(step, Delay):
                self._sleep(step)
                if step.then is not None:
                    step = step.then
                else:
                    # A bare delay stands before the next step of the script.
                    position, step = self._next_step(record.script or DEFAULT_SCRIPT, record.session_id)
                    if position is not None:
                        record.step_index = position
                continue
            if callable(step):
                step = step(record)
                continue
            raise TypeError(f"not a script step: {step!r}")

    def _sleep(self, step: Delay) -> None:
        deadline = time.monotonic() + step.seconds
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (step.until is not None and step.until.is_set()):
                return
            # Short waits so both the server's stop and `until` are noticed.
            if self._stopping.wait(min(remaining, 0.05)):
                raise _Stopped()

    def _answer(self, record: RequestRecord, body: dict[str, Any], session_id: Optional[str]) -> Union[Reply, HttpError]:
        """Decide what the model says to one POST /v1/messages."""
        if _is_side_request(body):
            record.kind = "side"
            return _side_reply(body)
        record.kind = "main"
        record.script = self._choose_script(body, session_id)
        record.step_index, step = self._next_step(record.script, session_id)
        return self._resolve(record, step)


def _session_id(headers: Any, body: dict[str, Any]) -> Optional[str]:
    """Claude Code names its session in a header and in metadata.user_id."""
    value = headers.get("X-Claude-Code-Session-Id")
    if value:
        return str(value)
    user_id = (body.get("metadata") or {}).get("user_id")
    try:
        parsed = json.loads(user_id) if isinstance(user_id, str) else None
    except ValueError:
        return None
    return str(parsed["session_id"]) if isinstance(parsed, dict) and parsed.get("session_id") else None


def _make_handler(fake: FakeModel) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "fake-model/1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep pytest output clean; the request log has it all

        # -- HTTP verbs -----------------------------------------------------

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            record = fake._record(self.command, path)
            raw = self._read_body()
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = None
            if path == "/v1/messages" and isinstance(body, dict):
                self._messages(record, body)
            elif path == "/v1/messages/count_tokens" and isinstance(body, dict):
                record.kind, record.body = "count_tokens", body
                self._send_json(record, 200, {"input_tokens": max(1, len(raw) // 4)})
            elif path.startswith("/v1/messages"):
                self._send_json(record, 400, HttpError(400, "request body is not a JSON object").body())
            else:
                self._not_found(record)

        def do_GET(self) -> None:
            self._not_found(fake._record(self.command, urlsplit(self.path).path))

        def do_HEAD(self) -> None:
            record = fake._record(self.command, urlsplit(self.path).path)
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "0")
            self.end_headers()
            fake._finish(record, 404)

        do_PUT = do_DELETE = do_PATCH = do_POST

        # -- /v1/messages ---------------------------------------------------

        def _messages(self, record: RequestRecord, body: dict[str, Any]) -> None:
            record.body = body
            record.headers = dict(self.headers.items())
            record.model = str(body.get("model", ""))
            record.stream = bool(body.get("stream"))
            record.session_id = _session_id(self.headers, body)
            record.system = _system_text(body)
            # Subagent calls share the session id; the billing line tells them.
            record.subagent = "cc_is_subagent=true" in record.system
            users = _user_messages(body)
            record.prompt = _block_text(users[0].get("content")) if users else ""
            record.user_text = _text_since_reply(body)
            record.tool_results = fake._new_tool_results(record.session_id, _tool_results(body))
            try:
                outcome = fake._answer(record, body, record.session_id)
            except _Stopped:
                self.close_connection = True
                fake._finish(record, 0)
                return
            except Exception as exc:  # a broken script must show, not hang the CLI
                fake._error(f"request {record.index}: {type(exc).__name__}: {exc}")
                outcome = HttpError(500, f"fake model error: {exc}")
            if isinstance(outcome, HttpError):
                self._send_json(record, outcome.status, outcome.body())
                return
            ids = [_new_id("toolu") for _ in outcome.calls]
            record.reply, record.tool_use_ids = outcome, ids
            model = record.model or FAKE_MODEL_NAME
            if record.stream:
                self._send_stream(record, outcome, ids, model)
            else:
                self._send_json(record, 200, _message(outcome, ids, model, final=True))

        def _send_stream(self, record: RequestRecord, reply: Reply, ids: list[str], model: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("request-id", _new_id("req"))
            # No length is known up front: the end of the stream is the close.
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            try:
                for event, data in _sse_events(reply, ids, model):
                    self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
            except OSError:
                pass  # the client went away (e.g. it was killed mid-turn)
            fake._finish(record, 200)

        # -- helpers --------------------------------------------------------

        def _read_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length > 0 else b""

        def _not_found(self, record: RequestRecord) -> None:
            error = HttpError(404, f"no such endpoint: {record.method} {record.path}")
            self._send_json(record, 404, error.body())

        def _send_json(self, record: RequestRecord, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("request-id", _new_id("req"))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True
            fake._finish(record, status)

    return Handler
