"""A loopback Weaviate: the REST schema endpoints and the gRPC `weaviate.v1.Weaviate` service
(Search, BatchObjects, BatchDelete, Aggregate, and the health check), built from the protobuf
definitions that ship inside `weaviate-client`, so the real client talks to it unchanged.

It enforces what Weaviate documents: `Authorization: Bearer <key>` on REST and gRPC (401 /
UNAUTHENTICATED otherwise), collection names matching ^[A-Z][_0-9A-Za-z]*$, one vector width per
collection, cosine distance computed as the server does (1 - cosine), limit ≤ QUERY_MAXIMUM_RESULTS
(10,000) for a search and for the objects one batch delete may match, gRPC messages ≤ 10 MB.

What it cannot tell: the speed of a server's HNSW index (this one searches exactly), replication
and consistency levels, multi-tenancy, modules, and anything about TLS or Weaviate Cloud's routing.
"""
from __future__ import annotations

import json
import re
import threading
import time
import uuid as uuid_module
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
from weaviate.proto.v1 import (aggregate_pb2, batch_delete_pb2, batch_pb2, health_weaviate_pb2, properties_pb2,
                               search_get_pb2, weaviate_pb2_grpc)

QUERY_MAXIMUM_RESULTS = 10_000
MAX_MESSAGE_BYTES = 10 * 1024 * 1024
VERSION = "1.33.0"


class WeaviateStandIn:
    def __init__(self, api_key: str = "wv-test-key"):
        self.api_key = api_key
        self.collections: dict[str, dict] = {}  # name -> {"config", "dim", "objects": {uuid: (vector, props, created)}}
        self.lock = threading.Lock()
        self.grpc_calls: list[str] = []
        self.fail_next: list[grpc.StatusCode] = []  # codes to answer the next gRPC calls with (RESOURCE_EXHAUSTED, ...)
        self.rest_calls: list[tuple[str, str, dict]] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                stand_in._rest(self, "GET")

            def do_POST(self):
                stand_in._rest(self, "POST")

            def do_DELETE(self):
                stand_in._rest(self, "DELETE")

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                                options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        weaviate_pb2_grpc.add_WeaviateServicer_to_server(_Service(self), self.grpc)
        self.grpc.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
            "Check": grpc.unary_unary_rpc_method_handler(
                lambda request, context: health_weaviate_pb2.WeaviateHealthCheckResponse(
                    status=health_weaviate_pb2.WeaviateHealthCheckResponse.SERVING),
                request_deserializer=health_weaviate_pb2.WeaviateHealthCheckRequest.FromString,
                response_serializer=health_weaviate_pb2.WeaviateHealthCheckResponse.SerializeToString)})])
        self.grpc_port = self.grpc.add_insecure_port("127.0.0.1:0")

    @property
    def url(self) -> str:
        host, port = self.http.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def grpc_url(self) -> str:
        return f"http://127.0.0.1:{self.grpc_port}"

    def __enter__(self) -> "WeaviateStandIn":
        self.http_thread.start()
        self.grpc.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        """The server goes away: both ports refuse connections from now on."""
        self.grpc.stop(grace=None)
        self.http.shutdown()
        self.http.server_close()

    # -- REST ---------------------------------------------------------------------------------------
    def _rest(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = json.loads(handler.rfile.read(length) or b"{}") if length else {}
        path = handler.path.split("?")[0]
        self.rest_calls.append((method, path, dict(handler.headers)))
        if handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            status, reply = 401, {"code": 401, "message": "anonymous access not enabled, please provide an auth scheme"}
        else:
            status, reply = self._route(method, path, body)
        data = json.dumps(reply).encode()
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _route(self, method: str, path: str, body: dict) -> tuple[int, dict]:
        if method == "GET" and path == "/v1/meta":
            return 200, {"version": VERSION, "grpcMaxMessageSize": MAX_MESSAGE_BYTES, "hostname": "http://[::]:8080",
                         "modules": {}}
        if method == "GET" and path == "/v1/.well-known/ready":
            return 200, {}
        match = re.fullmatch(r"/v1/schema/([^/]+)", path)
        if match and method == "GET":
            found = self.collections.get(match.group(1))
            return (200, found["config"]) if found else (404, {"error": [{"message": "class not found"}]})
        if match and method == "DELETE":
            with self.lock:
                self.collections.pop(match.group(1), None)
            return 200, {}
        if path == "/v1/schema" and method == "POST":
            name = body.get("class", "")
            if not re.fullmatch(r"[A-Z][_0-9A-Za-z]*", name):
                return 422, {"error": [{"message": f"'{name}' is not a valid class name"}]}
            if name in self.collections:
                return 422, {"error": [{"message": f"class name {name!r} already exists"}]}
            vectors = body.get("vectorConfig") or {"": {"vectorIndexConfig": body.get("vectorIndexConfig", {}),
                                                        "vectorizer": {body.get("vectorizer", "none"): {}}}}
            for config in vectors.values():
                if list(config.get("vectorizer", {"none": {}})) != ["none"]:
                    return 422, {"error": [{"message": "no vectorizer modules are enabled on this server"}]}
                if config.get("vectorIndexConfig", {}).get("distance", "cosine") != "cosine":
                    return 422, {"error": [{"message": "the stand-in serves cosine distance only"}]}
            with self.lock:
                self.collections[name] = {"config": body, "objects": {}, "dim": None}
            return 200, body
        return 404, {"error": [{"message": f"no route {method} {path}"}]}


class _Service(weaviate_pb2_grpc.WeaviateServicer):
    def __init__(self, stand_in: WeaviateStandIn):
        self.s = stand_in

    def _check(self, context, name: str) -> None:
        self.s.grpc_calls.append(name)
        if self.s.fail_next:
            context.abort(self.s.fail_next.pop(0), "try again later")
        metadata = dict(context.invocation_metadata())
        if metadata.get("authorization") != f"Bearer {self.s.api_key}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "anonymous access not enabled")

    def _collection(self, context, name: str) -> dict:
        found = self.s.collections.get(name)
        if found is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"class {name} not found")
        return found

    def BatchObjects(self, request, context):
        self._check(context, "BatchObjects")
        errors = []
        with self.s.lock:
            for index, obj in enumerate(request.objects):
                collection = self.s.collections.get(obj.collection)
                vector = _vector(obj)
                if collection is None:
                    errors.append(batch_pb2.BatchObjectsReply.BatchError(index=index, error="class not found"))
                    continue
                if collection["dim"] is not None and vector is not None and len(vector) != collection["dim"]:
                    errors.append(batch_pb2.BatchObjectsReply.BatchError(
                        index=index, error=f"new node has a vector with length {len(vector)}. "
                                           f"Existing nodes have vectors with length {collection['dim']}"))
                    continue
                if vector is not None:
                    collection["dim"] = len(vector)
                props = {}
                for key, value in obj.properties.non_ref_properties.items():
                    props[key] = value
                for arr in obj.properties.int_array_properties:
                    props[arr.prop_name] = list(arr.values)
                key = str(uuid_module.UUID(obj.uuid))
                created = collection["objects"].get(key, (None, None, time.time()))[2]
                collection["objects"][key] = (vector, props, created)
        return batch_pb2.BatchObjectsReply(took=0.001, errors=errors)

    def Search(self, request, context):
        self._check(context, "Search")
        collection = self._collection(context, request.collection)
        if request.limit > QUERY_MAXIMUM_RESULTS:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"limit exceeds QUERY_MAXIMUM_RESULTS ({QUERY_MAXIMUM_RESULTS})")
        with self.s.lock:
            items = [(u, v, p, t) for u, (v, p, t) in collection["objects"].items()
                     if not request.HasField("filters") or _matches(request.filters, u)]
        distances: dict[str, float] = {}
        if request.HasField("near_vector"):
            query = _vector(request.near_vector)
            if collection["dim"] is not None and len(query) != collection["dim"]:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "vector lengths don't match")
            for u, v, _, _ in items:
                distances[u] = 1.0 - float(v @ query / (np.linalg.norm(v) * np.linalg.norm(query) + 1e-12))
            items.sort(key=lambda item: distances[item[0]])
        results = []
        for u, _, props, created in items[:request.limit or QUERY_MAXIMUM_RESULTS]:
            fields = {}
            # No properties request means all of them (as the server does); an empty one, none.
            everything = not request.HasField("properties") or request.properties.return_all_nonref_properties
            if everything or request.properties.non_ref_properties:
                wanted = set(props) if everything else set(request.properties.non_ref_properties)
                fields = {k: properties_pb2.Value(int_value=int(v)) for k, v in props.items()
                          if k in wanted and isinstance(v, (int, float))}
            # What a server always fills in: the id (as text and bytes) and the object's times.
            metadata = search_get_pb2.MetadataResult(
                id=u, id_as_bytes=uuid_module.UUID(u).bytes, creation_time_unix=int(created * 1000),
                creation_time_unix_present=True, last_update_time_unix=int(created * 1000),
                last_update_time_unix_present=True)
            if u in distances:
                metadata.distance, metadata.distance_present = distances[u], True
            results.append(search_get_pb2.SearchResult(
                metadata=metadata,
                properties=search_get_pb2.PropertiesResult(non_ref_props=properties_pb2.Properties(fields=fields))))
        return search_get_pb2.SearchReply(took=0.001, results=results)

    def BatchDelete(self, request, context):
        self._check(context, "BatchDelete")
        collection = self._collection(context, request.collection)
        with self.s.lock:
            matched = [u for u in collection["objects"] if _matches(request.filters, u)]
            if len(matched) > QUERY_MAXIMUM_RESULTS:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the filter matches more than QUERY_MAXIMUM_RESULTS")
            if not request.dry_run:
                for u in matched:
                    del collection["objects"][u]
        return batch_delete_pb2.BatchDeleteReply(took=0.001, matches=len(matched), successful=len(matched))

    def Aggregate(self, request, context):
        self._check(context, "Aggregate")
        collection = self._collection(context, request.collection)
        return aggregate_pb2.AggregateReply(took=0.001, single_result=aggregate_pb2.AggregateReply.Single(
            objects_count=len(collection["objects"])))


def _vector(message) -> np.ndarray | None:
    if message.vector_bytes:
        return np.frombuffer(message.vector_bytes, dtype="<f4").astype(np.float64)
    for named in message.vectors:
        return np.frombuffer(named.vector_bytes, dtype="<f4").astype(np.float64)
    if len(message.vector):
        return np.asarray(message.vector, dtype=np.float64)
    return None


def _matches(filters, object_uuid: str) -> bool:
    """The id filters the client sends: `_id` equal to one UUID, or containing any of several."""
    on = filters.target.property if filters.HasField("target") else (filters.on[0] if filters.on else "")
    if on != "_id":
        raise ValueError(f"the stand-in filters on _id only, not {on!r}")
    if filters.HasField("value_text_array"):
        return object_uuid in {str(uuid_module.UUID(v)) for v in filters.value_text_array.values}
    return object_uuid == str(uuid_module.UUID(filters.value_text))
