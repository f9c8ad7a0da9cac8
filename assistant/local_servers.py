"""Local OpenAI-compatible servers on their usual ports, for `memchat doctor` to point out.

Each is asked for GET /v1/models on the loopback interface, all at once, with a short timeout: a
port where nothing listens refuses at once, so doctor is not slowed when none runs. Nothing
is sent but that request; no key.
"""
from __future__ import annotations

import ipaddress
import json
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from assistant.backends.openai_chat import chat_models

# Where each server listens unless told otherwise: Ollama's `ollama serve`, LM Studio's server tab.
LOCAL_SERVERS: dict[str, str] = {
    "Ollama": "http://127.0.0.1:11434/v1",
    "LM Studio": "http://127.0.0.1:1234/v1",
}
PROBE_TIMEOUT_S = 0.3
NO_MODELS = {"Ollama": "pull one: `ollama pull llama3.2`", "LM Studio": "download or load one in LM Studio"}


@dataclass
class LocalServer:
    name: str
    url: str
    models: list[str]


LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def server_address(url: str | None) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, path) to tell whether two base URLs name one server: localhost,
    127.0.0.1 and ::1 are one host, the default port is filled in, a trailing / and /v1 do not count."""
    try:
        parts = urlsplit((url or "").strip())
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:  # a port that is no number
        return None
    if not host or parts.scheme not in ("http", "https"):
        return None
    host = "127.0.0.1" if host in LOOPBACK_NAMES else host
    path = parts.path.rstrip("/").removesuffix("/v1").rstrip("/")
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def same_server(a: str | None, b: str | None) -> bool:
    return server_address(a) is not None and server_address(a) == server_address(b)


def is_loopback(url: str | None) -> bool:
    address = server_address(url)
    if address is None:
        return False
    try:
        return address[1] == "127.0.0.1" or ipaddress.ip_address(address[1]).is_loopback
    except ValueError:  # a name, not an address
        return False


def list_models(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> list[str] | None:
    """The model ids an OpenAI-compatible server at `url` lists, or None if none answers there."""
    return probe(url, timeout_s)[1]


def probe(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> tuple[int | None, list[str] | None]:
    """(HTTP status of GET {url}/models or None when nothing answers, the model ids or None).
    http.client, not urllib: a proxy set in the environment must not carry a loopback request."""
    import http.client

    parts = urlsplit(url)
    status = None
    try:
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443, timeout=timeout_s)
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout_s)
    except (ValueError, http.client.HTTPException):  # no host, or a port that is no number
        return None, None
    try:
        connection.request("GET", parts.path.rstrip("/") + "/models")
        response = connection.getresponse()
        status = response.status
        if status != 200:
            return status, None  # a server, but one that wants a key or has another path
        return status, [str(m["id"]) for m in json.loads(response.read())["data"]]
    except (OSError, ValueError, KeyError, TypeError, http.client.HTTPException):
        return status, None  # nothing there, or something that is not an OpenAI-compatible server
    finally:
        connection.close()


def find_local_servers(timeout_s: float = PROBE_TIMEOUT_S) -> list[LocalServer]:
    """The servers of LOCAL_SERVERS that answer, probed side by side (≤ timeout_s in all)."""
    answers: dict[str, list[str] | None] = {}

    def probe(name: str, url: str) -> None:
        answers[name] = list_models(url, timeout_s)

    threads = [threading.Thread(target=probe, args=item, daemon=True) for item in LOCAL_SERVERS.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s + 0.2)
    return [LocalServer(name, url, answers[name]) for name, url in LOCAL_SERVERS.items()
            if answers.get(name) is not None]


def local_server_lines(settings) -> list[str]:
    """What doctor says about the local servers it finds, with the variables that use one."""
    found = find_local_servers()
    lines = []
    configured = settings.openai_base_url
    for name, url in LOCAL_SERVERS.items():
        if same_server(url, configured) and name not in {server.name for server in found}:
            start = " (`ollama serve`)" if name == "Ollama" else ""
            lines.append(f"  MEMCHAT_OPENAI_BASE_URL is {name}'s address, but nothing answers there: start {name}{start}")
    if not found:
        where = ", ".join(f"{name} on {urlsplit(url).netloc}" for name, url in LOCAL_SERVERS.items())
        return lines + [f"  none answering ({where})"]
    for server in found:
        listed = f"{len(server.models)} model{'s' * (len(server.models) != 1)}"
        if server.models:
            listed += f" ({', '.join(server.models[:6])}{', …' if len(server.models) > 6 else ''})"
        lines.append(f"  {server.name} at {server.url}: {listed}")
        in_use = settings.backend == "openai" and same_server(configured, server.url)
        if in_use:
            lines.append("    in use (--backend openai, MEMCHAT_OPENAI_BASE_URL)")
            continue
        candidates = chat_models(server.models)
        if not candidates:
            lines.append(f"    no chat model yet: {NO_MODELS.get(server.name, 'load one in the server')}")
            continue
        lines.append(f"    to use it: MEMCHAT_BACKEND=openai MEMCHAT_OPENAI_BASE_URL={server.url} "
                     f"MEMCHAT_MODEL={candidates[0]}")
    return lines
