"""A loopback Pinecone: the control plane's index describe/create and the data plane's vector API
(API version 2026-07, JSON over HTTP, as the `pinecone` SDK speaks it), one server for both.

It enforces what Pinecone documents, so misuse fails in tests: the key in the `Api-Key` header
(401 otherwise), ≤ 1,000 vectors and ≤ 2 MB per upsert, ≤ 1,000 ids per delete, string ids of 1-512
characters, values of the index's dimension and not all zero, 1 ≤ topK ≤ 10,000, metadata ≤ 40 KB,
index names of lowercase letters, digits and '-'. Like the service it is eventually consistent:
writes are acknowledged at once and become visible to query, fetch and stats `lag_s` later.

What it cannot tell: the service's speed, its real freshness, quotas beyond those above, and
anything the SDK does against production hosts only (TLS, DNS, the gRPC transport).
"""
from __future__ import annotations

import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

MAX_UPSERT_VECTORS = 1_000
MAX_REQUEST_BYTES = 2 * 1024 * 1024
MAX_DELETE_IDS = 1_000
MAX_TOP_K = 10_000
MAX_METADATA_BYTES = 40 * 1024


class ApiFailure(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class PineconeStandIn:
    def __init__(self, api_key: str = "pc-test-key", lag_s: float = 0.3):
        self.api_key = api_key
        self.lag_s = lag_s
        self.indexes: dict[str, dict] = {}  # name -> {"dimension", "metric", "body"}
        self.log: list[tuple[float, str, dict]] = []  # (time, namespace, change) applied in order
        self.requests: list[tuple[str, str, dict]] = []  # (method, path, headers)
        self.fail_next: list[int] = []  # statuses to answer the next requests with (429, 503, ...)
        self.upsert_sizes: list[int] = []  # vectors per upsert request, as received
        self.outage = False  # while set, every request is answered 503, as in a service outage
        self.lock = threading.Lock()
        self.connections: set = set()  # open client connections, cut when the service stops
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def setup(self):
                super().setup()
                stand_in.connections.add(self.connection)

            def do_GET(self):
                stand_in._handle(self, "GET")

            def do_POST(self):
                stand_in._handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> "PineconeStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """The service goes away: open connections are cut and new ones refused."""
        self.server.shutdown()
        self.server.server_close()
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the client

    # -- the visible state: changes older than lag_s ---------------------------------------------
    def visible(self, namespace: str, now: float | None = None) -> dict[str, tuple[list, dict | None]]:
        cutoff = (now or time.monotonic()) - self.lag_s
        vectors: dict[str, tuple[list, dict | None]] = {}
        with self.lock:
            for at, ns, change in self.log:
                if at > cutoff:
                    break
                if ns != namespace:
                    continue
                if change["op"] == "upsert":
                    vectors[change["id"]] = (change["values"], change.get("metadata"))
                elif change["op"] == "delete":
                    vectors.pop(change["id"], None)
                else:  # delete_all
                    vectors.clear()
        return vectors

    def namespaces(self) -> set[str]:
        with self.lock:
            return {ns for _, ns, _ in self.log}

    # -- dispatch ---------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("content-length") or 0)
        raw = handler.rfile.read(length) if length else b""
        url = urlsplit(handler.path)
        self.requests.append((method, url.path, dict(handler.headers)))
        try:
            if self.outage:
                raise ApiFailure(503, "UNAVAILABLE", "service unavailable")
            if self.fail_next:
                status = self.fail_next.pop(0)
                raise ApiFailure(status, "RESOURCE_EXHAUSTED" if status == 429 else "UNAVAILABLE", "try again")
            if handler.headers.get("Api-Key") != self.api_key:
                raise ApiFailure(401, "UNAUTHENTICATED", "Invalid API Key")
            if not handler.headers.get("X-Pinecone-Api-Version"):
                raise ApiFailure(400, "INVALID_ARGUMENT", "missing X-Pinecone-Api-Version")
            if len(raw) > MAX_REQUEST_BYTES:
                raise ApiFailure(413, "OUT_OF_RANGE", f"request size {len(raw)} exceeds 2MB")
            body = json.loads(raw) if raw else {}
            status, reply = self._route(method, url.path, parse_qs(url.query), body)
        except ApiFailure as exc:
            status, reply = exc.status, {"error": {"code": exc.code, "message": exc.message}, "status": exc.status}
        data = json.dumps(reply).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, method: str, path: str, query: dict, body: dict) -> tuple[int, dict]:
        if method == "GET" and path.startswith("/indexes/"):
            return 200, self._index_model(self._index(path.rsplit("/", 1)[1]))
        if method == "POST" and path == "/indexes":
            return 201, self._create_index(body)
        routes = {("POST", "/vectors/upsert"): self._upsert, ("POST", "/query"): self._query,
                  ("POST", "/vectors/delete"): self._delete, ("GET", "/vectors/fetch"): self._fetch,
                  ("POST", "/describe_index_stats"): self._stats}
        if (method, path) not in routes:
            raise ApiFailure(404, "NOT_FOUND", f"no route {method} {path}")
        if not self.indexes:
            raise ApiFailure(404, "NOT_FOUND", "index not found")
        return 200, routes[(method, path)](body if method == "POST" else query)

    def _index(self, name: str) -> dict:
        if name not in self.indexes:
            raise ApiFailure(404, "NOT_FOUND", f"Resource {name} not found")
        return self.indexes[name]

    @property
    def dimension(self) -> int:
        return next(iter(self.indexes.values()))["dimension"]

    def _index_model(self, index: dict) -> dict:
        return {"name": index["name"], "host": self.url, "status": {"ready": True, "state": "Ready"},
                "schema": index["schema"], "deployment": index["deployment"], "deletion_protection": "disabled"}

    def _create_index(self, body: dict) -> dict:
        name = body.get("name", "")
        if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,43}[a-z0-9])?", name):
            raise ApiFailure(400, "INVALID_ARGUMENT", "Name must consist of lowercase alphanumeric characters or '-'")
        if name in self.indexes:
            raise ApiFailure(409, "ALREADY_EXISTS", f"Resource {name} already exists")
        field = body.get("schema", {}).get("fields", {}).get("_values", {})
        if field.get("type") != "dense_vector" or not 1 <= int(field.get("dimension", 0)) <= 20_000:
            raise ApiFailure(400, "INVALID_ARGUMENT", "a dense vector field with a dimension is required")
        deployment = body.get("deployment") or {}
        if deployment.get("deployment_type") != "managed" or not deployment.get("cloud") or not deployment.get("region"):
            raise ApiFailure(400, "INVALID_ARGUMENT", "deployment needs deployment_type, cloud and region")
        self.indexes[name] = {"name": name, "dimension": int(field["dimension"]), "metric": field.get("metric"),
                              "schema": body["schema"], "deployment": deployment}
        return self._index_model(self.indexes[name])

    def _append(self, namespace: str, changes: list[dict]) -> None:
        with self.lock:
            now = time.monotonic()
            self.log.extend((now, namespace, change) for change in changes)

    def _upsert(self, body: dict) -> dict:
        vectors = body.get("vectors") or []
        if not 1 <= len(vectors) <= MAX_UPSERT_VECTORS:
            raise ApiFailure(400, "INVALID_ARGUMENT", f"between 1 and {MAX_UPSERT_VECTORS} vectors per upsert")
        self.upsert_sizes.append(len(vectors))
        changes = []
        for v in vectors:
            if not isinstance(v.get("id"), str) or not 1 <= len(v["id"]) <= 512:
                raise ApiFailure(400, "INVALID_ARGUMENT", "vector id must be a string of 1 to 512 characters")
            values = v.get("values") or []
            if len(values) != self.dimension:
                raise ApiFailure(400, "INVALID_ARGUMENT",
                                 f"Vector dimension {len(values)} does not match the dimension of the index {self.dimension}")
            if not any(values):
                raise ApiFailure(400, "INVALID_ARGUMENT", "Dense vectors must contain at least one non-zero value")
            if len(json.dumps(v.get("metadata") or {})) > MAX_METADATA_BYTES:
                raise ApiFailure(400, "INVALID_ARGUMENT", "metadata size exceeds the limit of 40960 bytes")
            changes.append({"op": "upsert", "id": v["id"], "values": values, "metadata": v.get("metadata")})
        self._append(body.get("namespace", ""), changes)
        return {"upsertedCount": len(changes)}

    def _query(self, body: dict) -> dict:
        top_k = body.get("topK")
        if not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
            raise ApiFailure(400, "INVALID_ARGUMENT", f"topK must be between 1 and {MAX_TOP_K}")
        query = np.asarray(body.get("vector") or [], dtype=np.float64)
        if len(query) != self.dimension:
            raise ApiFailure(400, "INVALID_ARGUMENT", "query vector dimension does not match the index")
        namespace = body.get("namespace", "")
        stored = self.visible(namespace)
        matches = []
        if stored:
            ids = list(stored)
            matrix = np.array([stored[i][0] for i in ids], dtype=np.float64)
            scores = matrix @ query / (np.linalg.norm(matrix, axis=1) * np.linalg.norm(query) + 1e-12)
            matches = [{"id": ids[j], "score": float(scores[j])} for j in np.argsort(-scores)[:top_k]]
        return {"matches": matches, "namespace": namespace, "usage": {"readUnits": 1 + len(stored) // 1000}}

    def _delete(self, body: dict) -> dict:
        namespace = body.get("namespace", "")
        if body.get("deleteAll"):
            if namespace not in self.namespaces():
                raise ApiFailure(404, "NOT_FOUND", "Namespace not found")
            self._append(namespace, [{"op": "delete_all"}])
            return {}
        ids = body.get("ids") or []
        if not 1 <= len(ids) <= MAX_DELETE_IDS:
            raise ApiFailure(400, "INVALID_ARGUMENT", f"between 1 and {MAX_DELETE_IDS} ids per delete")
        self._append(namespace, [{"op": "delete", "id": i} for i in ids])
        return {}

    def _fetch(self, query: dict) -> dict:
        ids = query.get("ids", [])
        if not 1 <= len(ids) <= 1_000:
            raise ApiFailure(400, "INVALID_ARGUMENT", "between 1 and 1000 ids per fetch")
        namespace = (query.get("namespace") or [""])[0]
        stored = self.visible(namespace)
        found = {i: {"id": i, "values": stored[i][0], **({"metadata": stored[i][1]} if stored[i][1] else {})}
                 for i in ids if i in stored}
        return {"vectors": found, "namespace": namespace, "usage": {"readUnits": 1}}

    def _stats(self, body: dict) -> dict:
        counts = {ns: len(self.visible(ns)) for ns in self.namespaces()}
        return {"namespaces": {ns: {"vectorCount": n} for ns, n in counts.items() if n},
                "dimension": self.dimension, "indexFullness": 0.0, "totalVectorCount": sum(counts.values()),
                "metric": "cosine", "vectorType": "dense"}
