"""A loopback Hugging Face Hub for `memchat model pull`, answering what hf_hub_download asks.

huggingface_hub 2.4 (file_download.py) sends HEAD /{repo}/resolve/{revision}/{filename} and reads
X-Repo-Commit, X-Linked-Etag (for a Git LFS file, its SHA-256; else ETag) and X-Linked-Size (else
Content-Length), then GET on the same path, with `Range: bytes=N-` when it resumes a transfer cut
mid-file (http_get retries on a RemoteProtocolError). A repository or file it does not hold gets
404 with X-Error-Code: RepoNotFound / EntryNotFound, which huggingface_hub maps to its own errors.

`cut_after`: the first GET of a file sends that many bytes of the promised Content-Length and
closes the connection, as a dropped network would; the next GET (with its Range) gets the rest.
`etag_sha256`: the SHA-256 the server claims (default: the file's own), to play a corrupt mirror.
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HubFile:
    path: Path
    cut_after: int | None = None
    etag_sha256: str | None = None
    sha256: str = field(init=False)

    def __post_init__(self):
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        self.sha256 = digest.hexdigest()


class HubStandIn:
    def __init__(self, files: dict[tuple[str, str], HubFile]):
        self.files = files  # (repo, filename) -> the file served
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                stand_in.serve(self, body=False)

            def do_GET(self):
                stand_in.serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "HubStandIn":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def gets(self) -> list[tuple[str, str, str | None]]:
        """The file downloads (huggingface_hub also fetches /api/agent-harnesses, its agent registry)."""
        return [r for r in self.requests if r[0] == "GET" and "/resolve/" in r[1]]

    def serve(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        range_header = handler.headers.get("Range")
        self.requests.append((handler.command, handler.path, range_header))
        match = re.fullmatch(r"/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", handler.path.split("?")[0])
        hub_file = self.files.get((match["repo"], match["file"])) if match else None
        if hub_file is None:
            known = match and any(repo == match["repo"] for repo, _ in self.files)
            handler.send_response(404)
            handler.send_header("X-Error-Code", "EntryNotFound" if known else "RepoNotFound")
            handler.send_header("X-Error-Message", "Entry not found" if known else "Repository not found")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        size = hub_file.path.stat().st_size
        start = int(re.fullmatch(r"bytes=(\d+)-", range_header)[1]) if range_header else 0
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", COMMIT)
        handler.send_header("X-Linked-Etag", f'"{hub_file.etag_sha256 or hub_file.sha256}"')
        handler.send_header("X-Linked-Size", str(size))
        handler.send_header("ETag", f'"{hub_file.etag_sha256 or hub_file.sha256}"')
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(size - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        handler.end_headers()
        if not body:
            return
        limit = size - start
        cut = hub_file.cut_after
        if cut is not None and not start:
            hub_file.cut_after = None  # only the first transfer is cut
            limit = cut
        with open(hub_file.path, "rb") as f:
            f.seek(start)
            sent = 0
            while sent < limit:
                block = f.read(min(1 << 20, limit - sent))
                if not block:
                    break
                try:
                    handler.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):
                    return
                sent += len(block)
        if cut is not None and not start:
            handler.close_connection = True
            handler.wfile.flush()
            handler.connection.shutdown(2)  # the promised bytes never come: the client sees the cut
