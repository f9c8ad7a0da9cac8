"""Loopback stand-ins for the remote model services, speaking their real wire protocols.

Gemini: POST /v1beta/models/{model}:streamGenerateContent?alt=sse (and :generateContent), key in
the x-goog-api-key header, server-sent events of GenerateContentResponse JSON.
OpenAI-compatible (Hugging Face TGI, vLLM, ...): POST /v1/chat/completions with "stream": true,
server-sent events of chat.completion.chunk JSON, closed by "data: [DONE]".
Each server plays a script: a list of responses, one per request, the last repeated.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Step:
    """One scripted response: an error status, a stall, a broken stream, or text chunks."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", " from", " the stand-in."])
    status: int = 200
    headers: dict = field(default_factory=dict)
    error_message: str = "error"
    stall_s: float = 0.0
    malformed: bool = False
    finish_reason: str | None = None  # e.g. "SAFETY" for Gemini
    chunk_delay_s: float = 0.0  # between streamed chunks, as a model generating them would


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: dict


class StandIn:
    def __init__(self, kind: str, script: list[Step] | None = None):
        self.kind = kind  # "gemini" or "openai"
        self.script = script or [Step()]
        self.requests: list[Recorded] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                stand_in.requests.append(Recorded("POST", self.path, dict(self.headers), json.loads(raw or b"{}")))
                step = stand_in.script[min(len(stand_in.requests) - 1, len(stand_in.script) - 1)]
                stand_in.respond(self, step)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "StandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- responses -----------------------------------------------------------------------------
    def respond(self, handler: BaseHTTPRequestHandler, step: Step) -> None:
        if step.stall_s:
            time.sleep(step.stall_s)
        if step.status != 200:
            body = json.dumps({"error": {"code": step.status, "message": step.error_message,
                                         "status": "RESOURCE_EXHAUSTED" if step.status == 429 else "ERROR"}}).encode()
            handler.send_response(step.status)
            for key, value in {"content-type": "application/json", "content-length": str(len(body)), **step.headers}.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(body)
            return
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("connection", "close")
        handler.end_headers()
        events = self._gemini_events(step) if self.kind == "gemini" else self._openai_events(step)
        try:
            for event in events:
                handler.wfile.write(f"data: {event}\r\n\r\n".encode())
                handler.wfile.flush()
                time.sleep(step.chunk_delay_s)
        except (BrokenPipeError, ConnectionResetError):  # the client stopped reading, as a cancel does
            pass
        handler.close_connection = True

    @staticmethod
    def _gemini_events(step: Step) -> list[str]:
        if step.malformed:
            return ['{"candidates": [{"content": {"parts": [{"text": "partial"}]', "not json at all"]
        events = []
        for i, chunk in enumerate(step.chunks):
            last = i == len(step.chunks) - 1
            candidate = {"content": {"role": "model", "parts": [{"text": chunk}]}, "index": 0}
            if last:
                candidate["finishReason"] = step.finish_reason or "STOP"
            event = {"candidates": [candidate], "modelVersion": "stand-in"}
            if last:
                event["usageMetadata"] = {"promptTokenCount": 42, "candidatesTokenCount": len(step.chunks),
                                          "totalTokenCount": 42 + len(step.chunks)}
            events.append(json.dumps(event))
        return events

    @staticmethod
    def _openai_events(step: Step) -> list[str]:
        if step.malformed:
            return ['{"id": "x", "choices": [{"delta": {"content": "partial"', "[DONE]"]
        base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": 0, "model": "stand-in"}
        events = [json.dumps({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": c},
                                                   "finish_reason": None}]}) for c in step.chunks]
        events.append(json.dumps({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        events.append(json.dumps({**base, "choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": len(step.chunks),
                                                                   "total_tokens": 42 + len(step.chunks)}}))
        events.append("[DONE]")
        return events
