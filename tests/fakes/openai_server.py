"""A local OpenAI-compatible server for the reasoning tests and the benchmark: real HTTP on 127.0.0.1.

It checks requests the way the real service does (``POST /v1/chat/completions`` and
``/v1/embeddings``, ``Authorization: Bearer <key>``, a JSON body with a known ``model``, well-formed
``messages``, a JSON ``response_format`` whose schema is an object) and answers with the real
status codes and error bodies. ``script`` queues behaviours for the next calls: an answer, a slow
answer, a refusal, a malformed body, a 429 with ``retry-after``, a 5xx. With nothing queued it asks
``responder`` (request body → answer text), by default a valid ``warning`` decision.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_DECISION = {"action_type": "warning", "duration_hours": None, "reason_code": "targeted_harassment",
                    "confidence": 0.8, "reasoning": "Insulting a participant; a first offence."}
EMBEDDING_DIM = 1536


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class Reply:
    """One scripted behaviour. ``kind``: answer | refusal | status | raw."""

    kind: str = "answer"
    content: str = ""
    delay_s: float = 0.0
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def answer(decision: dict[str, Any] | str, *, delay_s: float = 0.0) -> Reply:
    text = decision if isinstance(decision, str) else json.dumps(decision)
    return Reply("answer", text, delay_s)


def slow(seconds: float, decision: dict[str, Any] | None = None) -> Reply:
    return answer(decision or DEFAULT_DECISION, delay_s=seconds)


def refusal(text: str = "I'm sorry, but I can't help with that.") -> Reply:
    return Reply("refusal", text)


def malformed(text: str = "Sure! The user should probably be banned.") -> Reply:
    return Reply("answer", text)


def status(code: int, *, retry_after: float | None = None) -> Reply:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
    return Reply("status", "", 0.0, code, headers)


class FakeOpenAI:
    def __init__(self, *, api_key: str = "sk-test-123", model: str = "gpt-test",
                 responder: Callable[[dict[str, Any]], str] | None = None,
                 delay: Callable[[], float] | None = None, port: int = 0) -> None:
        self.api_key, self.model = api_key, model
        self.responder = responder or (lambda body: json.dumps(DEFAULT_DECISION))
        self.delay = delay  # a default delay per call (the benchmark's 1-3 s server)
        self.replies: deque[Reply] = deque()
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.failing: Reply | None = None  # set: every chat call gets this (an outage), scripted or not
        self.dropping = False  # True: connections are closed without an answer (the server went away)
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a slow reply still sleeping must not hold up shutdown
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, *replies: Reply) -> None:
        with self.lock:
            self.replies.extend(replies)

    def chat_requests(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "/v1/chat/completions"]

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self.lock:
            if self.failing is not None:
                return self.failing
            if self.replies:
                return self.replies.popleft()
        return Reply("answer", self.responder(body), self.delay() if self.delay else 0.0)


def _error(status_code: int, message: str, code: str | None, kind: str = "invalid_request_error"
           ) -> tuple[int, dict[str, Any]]:
    return status_code, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def check_chat(fake: FakeOpenAI, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The validation the real endpoint does before generating anything; None when the request is fine."""
    if body.get("model") != fake.model:
        return _error(404, f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                      "model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _error(400, "'messages' must be a non-empty array.", None)
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in {"system", "developer", "user", "assistant"} \
                or not isinstance(m.get("content"), str):
            return _error(400, "Invalid message in 'messages'.", "invalid_value")
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") not in {"json_schema", "json_object"}:
        return _error(400, "This test server only answers JSON: 'response_format' is required.", None)
    if fmt["type"] == "json_schema":
        spec = fmt.get("json_schema") or {}
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(spec.get("name", ""))):
            return _error(400, "Invalid 'response_format.json_schema.name'.", "invalid_value")
        schema = spec.get("schema") or {}
        if schema.get("type") != "object" or (spec.get("strict") and schema.get("additionalProperties") is not False):
            return _error(400, "Invalid schema for response_format: strict schemas need additionalProperties "
                               "false on an object.", "invalid_json_schema")
    elif not any("json" in m["content"].lower() for m in messages):
        return _error(400, "'messages' must contain the word 'json' in some form, to use 'response_format' "
                           "of type 'json_object'.", None)
    return None


def completion(model: str, reply: Reply) -> dict[str, Any]:
    refused = reply.kind == "refusal"
    return {
        "id": f"chatcmpl-{hashlib.sha1(str(time.time()).encode()).hexdigest()[:24]}",
        "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "logprobs": None, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": None if refused else reply.content,
                                 "refusal": reply.content if refused else None}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 40, "total_tokens": 140},
    }


def embed_text(text: str, dim: int = EMBEDDING_DIM) -> list[float]:
    """Deterministic bag-of-words vector: texts sharing words are close, as with a real model."""
    vector = [0.0] * dim
    for word in re.findall(r"[a-z']+", text.lower()):
        digest = hashlib.sha256(word.encode()).digest()
        vector[int.from_bytes(digest[:4], "big") % dim] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _handler(fake: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_: Any) -> None:
            pass

        def do_POST(self) -> None:
            if fake.dropping:
                self.close_connection = True
                return
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                return self._send(*_error(400, "We could not parse the JSON body of your request.", None))
            fake.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time()))
            if self.headers.get("authorization") != f"Bearer {fake.api_key}":
                return self._send(*_error(401, "Incorrect API key provided.", "invalid_api_key"))
            if not (self.headers.get("content-type") or "").startswith("application/json"):
                return self._send(*_error(400, "Content-Type must be application/json.", None))
            if self.path == "/v1/chat/completions":
                return self._chat(body)
            if self.path == "/v1/embeddings":
                return self._embeddings(body)
            return self._send(*_error(404, f"Invalid URL (POST {self.path})", None))

        def _chat(self, body: dict[str, Any]) -> None:
            problem = check_chat(fake, body)
            if problem:
                return self._send(*problem)
            reply = fake.next_reply(body)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.kind == "status":
                kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
                return self._send(*_error(reply.status, f"scripted {reply.status}", kind, kind), reply.headers)
            return self._send(200, completion(fake.model, reply))

        def _embeddings(self, body: dict[str, Any]) -> None:
            if body.get("model") != fake.model:
                return self._send(*_error(404, f"The model `{body.get('model')}` does not exist.", "model_not_found"))
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else texts
            if not isinstance(texts, list) or not texts or not all(isinstance(t, str) and t for t in texts):
                return self._send(*_error(400, "'input' must be a non-empty string or array of strings.", None))
            if body.get("encoding_format", "float") != "float":
                return self._send(*_error(400, "This test server only returns float embeddings.", None))
            dim = int(body.get("dimensions") or EMBEDDING_DIM)
            data = [{"object": "embedding", "index": i, "embedding": embed_text(t, dim)} for i, t in enumerate(texts)]
            return self._send(200, {"object": "list", "data": data, "model": fake.model,
                                    "usage": {"prompt_tokens": 10, "total_tokens": 10}})

        def _send(self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test): nothing to deliver

    return Handler
