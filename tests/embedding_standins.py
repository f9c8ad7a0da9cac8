"""Loopback stand-ins for the embedding providers, speaking their real wire protocols and
enforcing their documented limits, for the real SDKs to talk to.

gemini: POST .../models/{model}:batchEmbedContents, key in x-goog-api-key, {"requests": [{"content":
        {"parts": [{"text"}]}, "taskType", "model"}]} -> {"embeddings": [{"values"}]}; at most 100
        requests a batch.
openai: POST /v1/embeddings, key as a Bearer token, {"model", "input": [...], "encoding_format"}
        -> {"data": [{"index", "embedding"}]} (base64 little-endian float32 when asked); at most
        2,048 inputs a request.
hf:     POST / (Text Embeddings Inference), token as a Bearer token, {"inputs": [...]} -> [[...]];
        at most 32 inputs a request (TEI's default max_client_batch_size).

Vectors are a hashed bag of words (each word adds to one dimension), so texts that share words
are close: recall through a stand-in is meaningful, if weaker than a real model's. `fail` queues
statuses to answer the next requests with (200: answer that one normally); `stop()` and `start()` take the server off the network
and back on the same port, as an outage does.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

DIMS = {"gemini": 768, "openai": 1536, "hf": 384}
LIMITS = {"gemini": 100, "openai": 2048, "hf": 32}
KEY = "sk-standin-0123456789abcdefSECRET"


def bag_of_words(text: str, dim: int) -> list[float]:
    vector = np.zeros(dim, dtype=np.float32)
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % dim] += 1.0
    vector[0] += 0.01  # never all zero
    return vector.tolist()


class EmbeddingStandIn:
    def __init__(self, kind: str, key: str | None = KEY):
        self.kind, self.key, self.dim, self.limit = kind, key, DIMS[kind], LIMITS[kind]
        self.requests: list[dict] = []  # {"path", "headers", "body"} of every request
        self.fail: list[int] = []  # statuses to answer the next requests with, in order
        self.port = 0
        self.server = None
        self.down = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "EmbeddingStandIn":
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                if stand_in.down:  # a connection kept alive from before the outage: hang up
                    self.close_connection = True
                    return
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                body = json.loads(raw or b"{}")
                stand_in.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status, answer = stand_in.answer(self.path, dict(self.headers), body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.down = False
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.down = True
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "EmbeddingStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the protocols ---------------------------------------------------------------------------
    def _key_of(self, headers: dict) -> str | None:
        lower = {k.lower(): v for k, v in headers.items()}
        if self.kind == "gemini":
            return lower.get("x-goog-api-key")
        auth = lower.get("authorization", "")
        return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

    def answer(self, path: str, headers: dict, body: dict) -> tuple[int, object]:
        status = self.fail.pop(0) if self.fail else 200
        if status != 200:
            return status, {"error": {"code": status, "message": f"stand-in says {status}"}}
        if self.key is not None and self._key_of(headers) != self.key:
            return 401, {"error": {"code": 401, "message": "API key not valid"}}
        texts = self._texts(path, body)
        if texts is None:
            return 404, {"error": {"code": 404, "message": f"no route {path}"}}
        if not texts or len(texts) > self.limit:
            return 400, {"error": {"code": 400, "message": f"{len(texts)} inputs; between 1 and {self.limit} allowed"}}
        vectors = [bag_of_words(t, self.dim) for t in texts]
        if self.kind == "gemini":
            return 200, {"embeddings": [{"values": v} for v in vectors]}
        if self.kind == "openai":
            encode = body.get("encoding_format") == "base64"
            data = [{"object": "embedding", "index": i,
                     "embedding": base64.b64encode(np.asarray(v, "<f4").tobytes()).decode() if encode else v}
                    for i, v in enumerate(vectors)]
            return 200, {"object": "list", "data": data, "model": body.get("model"),
                         "usage": {"prompt_tokens": 1, "total_tokens": 1}}
        return 200, vectors

    def _texts(self, path: str, body: dict) -> list[str] | None:
        if self.kind == "gemini" and path.endswith(":batchEmbedContents"):
            return [part["text"] for r in body.get("requests", []) for part in r["content"]["parts"]]
        if self.kind == "openai" and path.endswith("/embeddings"):
            given = body.get("input")
            return [given] if isinstance(given, str) else list(given or [])
        if self.kind == "hf" and path in ("/", "/embed"):
            given = body.get("inputs")
            return [given] if isinstance(given, str) else list(given or [])
        return None

    def task_types(self) -> list[str]:
        """Gemini: the task type of every text embedded so far, in order."""
        return [r.get("taskType") for q in self.requests if "requests" in q["body"] for r in q["body"]["requests"]]
