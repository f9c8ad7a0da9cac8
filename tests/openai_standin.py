"""A loopback OpenAI-compatible server (as Ollama, LM Studio, llama.cpp's server and vLLM are), for
the real `openai` SDK to talk to.

POST /v1/chat/completions: {"model", "messages", "stream", "stream_options", ...}. With `stream`
true the reply is server-sent events of chat.completion.chunk JSON (`data: {...}\\n\\n`) in chunked
transfer encoding, as Ollama sends them: one chunk per word, a last choice with its finish_reason
("length" when max_tokens ran out; a `stop` sequence ends the text before it), then, when stream_options.include_usage, a chunk with no
choices and the usage, then `data: [DONE]`. prompt_tokens counts words and punctuation of every
message plus 4 a message, as a tokenizer would, roughly. Without `stream`, one chat.completion.
GET /v1/models: {"object": "list", "data": [{"id", "object": "model", ...}]}.
Errors in OpenAI's JSON shape ({"error": {"message", "type", "param", "code"}}): 401 for a wrong
key when `key` is set (echoing the key, as servers do, so the tests see it redacted), 404 for a
model it does not serve, and whatever `failures` queues (a status with headers, e.g. 429 with
Retry-After, and optionally the error's message, e.g. a 400 quoting the request's key as a proxy
might). `cut_after=N` closes the connection after N words, mid-body; `stream_error` is the message
of an `{"error": {...}}` event sent after `error_after` words, then `[DONE]`, as vLLM and llama.cpp
report a failure mid-generation; `stall_s` waits before a chat answer, as a server loading its
model does.
"""
from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OpenAIStandIn:
    def __init__(self, models: tuple[str, ...] = ("llama3.2:1b",), key: str | None = None,
                 reply: str = "Hello from the stand-in.", port: int = 0):
        self.models = list(models)
        self.key = key
        self.reply = reply
        self.cut_after: int | None = None
        self.word_delay_s = 0.0
        self.stall_s = 0.0  # before answering a chat request, as a server loading its model does
        self.failures: list[tuple] = []  # (status, headers[, message]) answered before any reply
        self.stream_error: str | None = None
        self.error_after = 1
        self.requests: list[dict] = []  # {"method", "path", "headers", "body"}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stand_in._record(self, {})
                if self.path.rstrip("/") != "/v1/models":
                    return stand_in._error(self, 404, "404 page not found", "not_found")
                if stand_in._refused(self):
                    return
                data = [{"id": m, "object": "model", "created": 0, "owned_by": "library"} for m in stand_in.models]
                stand_in._json(self, 200, {"object": "list", "data": data})

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                stand_in._record(self, body)
                if self.path != "/v1/chat/completions":
                    return stand_in._error(self, 404, "404 page not found", "not_found")
                if stand_in._refused(self):
                    return
                if body.get("model") not in stand_in.models:
                    return stand_in._error(self, 404, f"model \"{body.get('model')}\" not found, try pulling it first",
                                           "model_not_found")
                time.sleep(stand_in.stall_s)
                stand_in._chat(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "OpenAIStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def chat_requests(self) -> list[dict]:
        return [r for r in self.requests if r["path"] == "/v1/chat/completions"]

    # -- answers ---------------------------------------------------------------------------------
    def _record(self, handler, body: dict) -> None:
        self.requests.append({"method": handler.command, "path": handler.path,
                              "headers": {k.lower(): v for k, v in handler.headers.items()}, "body": body})

    def _refused(self, handler) -> bool:
        if self.failures:
            status, headers, *message = self.failures.pop(0)
            self._error(handler, status, message[0] if message else f"stand-in answers {status}",
                        "rate_limit_exceeded" if status == 429 else "error", headers)
            return True
        if self.key is not None:
            given = handler.headers.get("authorization", "").removeprefix("Bearer ")
            if given != self.key:
                self._error(handler, 401, f"Incorrect API key provided: {given}", "invalid_api_key")
                return True
        return False

    @staticmethod
    def _json(handler, status: int, payload: dict, headers: dict | None = None) -> None:
        raw = json.dumps(payload).encode()
        handler.send_response(status)
        for name, value in {"content-type": "application/json", "content-length": str(len(raw)),
                            **(headers or {})}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)

    def _error(self, handler, status: int, message: str, code: str, headers: dict | None = None) -> None:
        kind = "invalid_request_error" if status < 500 and status != 429 else "requests"
        self._json(handler, status, {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers)

    def _chat(self, handler, body: dict) -> None:
        reply = self.reply
        for stop in body.get("stop") or []:  # the reply ends before a stop sequence, which is not sent
            reply = reply.split(stop)[0]
        words = re.findall(r"\S+\s*", reply)
        limit = body.get("max_tokens") or body.get("max_completion_tokens") or len(words)
        finish = "length" if len(words) > limit else "stop"
        words = words[:limit]
        prompt_tokens = sum(len(re.findall(r"\w+|[^\w\s]", m.get("content") or "")) + 4 for m in body["messages"])
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(words),
                 "total_tokens": prompt_tokens + len(words)}
        base = {"id": "chatcmpl-standin", "created": int(time.time()), "model": body["model"],
                "system_fingerprint": "fp_standin"}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(words)}
            return self._json(handler, 200, {**base, "object": "chat.completion", "usage": usage,
                                             "choices": [{"index": 0, "message": message, "finish_reason": finish}]})
        chunk = {**base, "object": "chat.completion.chunk"}
        events = [{**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": w}, "finish_reason": None}]}
                  for w in words]
        events.append({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            events.append({**chunk, "choices": [], "usage": usage})
        if self.stream_error is not None:
            error = {"message": self.stream_error, "type": "server_error", "param": None, "code": 500}
            events = [*events[:self.error_after], {"error": error}]
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("transfer-encoding", "chunked")
        handler.end_headers()
        try:
            for number, event in enumerate([*map(json.dumps, events), "[DONE]"]):
                if self.cut_after is not None and number >= self.cut_after:
                    handler.wfile.flush()
                    handler.close_connection = True
                    return  # no closing zero-length chunk: the body ends mid-way
                _send_chunk(handler, f"data: {event}\n\n".encode())
                time.sleep(self.word_delay_s)
            _send_chunk(handler, b"")
        except (BrokenPipeError, ConnectionResetError):  # the client closed the stream, as a cancel does
            handler.close_connection = True


def _send_chunk(handler, data: bytes) -> None:
    handler.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    handler.wfile.flush()
