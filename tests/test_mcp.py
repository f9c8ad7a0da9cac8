"""`memchat mcp` driven by the official MCP SDK's own client: real `memchat mcp` subprocesses over
stdio and over Streamable HTTP on a free loopback port, on one data dir that the CLI writes to at
the same time. One server per module fixture (each loads the embedder once)."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import MEMCHAT, REPO

TZ = "America/Sao_Paulo"  # UTC-3 all year: a local time that differs from UTC on every date
START_S = 120  # a server's embedder loads on 2 busy cores


class Peer:
    """One SDK Client held open on a loop of its own, called from the (synchronous) tests."""

    def __init__(self, make_transport):
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self._ready = self.loop.create_future()
        self._held = asyncio.run_coroutine_threadsafe(self._hold(make_transport), self.loop)
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(asyncio.shield(self._ready), START_S), self.loop).result()

    async def _hold(self, make_transport) -> None:
        from mcp import Client

        self._stop = asyncio.Event()
        try:
            async with make_transport() as transport, Client(transport, read_timeout_seconds=START_S) as client:
                self.client = client
                self._ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(START_S)

    def tools(self) -> set[str]:
        return {t.name for t in self._run(self.client.list_tools()).tools}

    def call(self, name: str, **arguments) -> dict:
        result = self._run(self.client.call_tool(name, arguments))
        assert not result.is_error, result.content[0].text
        return result.structured_content

    def error(self, name: str, **arguments) -> str:
        result = self._run(self.client.call_tool(name, arguments))
        assert result.is_error, result.structured_content
        return result.content[0].text

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        try:
            self._held.result(30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)


class _Pass:
    """A Transport that is already open (the stdio client opens its own)."""

    def __init__(self, manager):
        self.manager = manager

    async def __aenter__(self):
        return self.manager

    async def __aexit__(self, *exc):
        return None


@pytest.fixture(scope="module")
def home(tmp_path_factory, model_cache, embedder):  # embedder: the ONNX copy exists before any process needs it
    root = tmp_path_factory.mktemp("mcp")
    env = {**os.environ, "MEMCHAT_DATA_DIR": str(root / "data"), "MEMCHAT_MODEL_CACHE": str(model_cache),
           "HF_HUB_OFFLINE": "1", "XDG_CONFIG_HOME": str(root / "config"), "MEMCHAT_TZ": TZ}
    return {"root": root, "data": root / "data", "env": env, "token_file": root / "config" / "memchat" / "mcp-token"}


def _launch(home) -> tuple[str, list[str]]:
    from assistant.config import load_settings
    from assistant.mcp_server import launch_command

    return launch_command(load_settings({"data_dir": home["data"]}, env_file=None))


def _stdio(home, *args) -> Peer:
    from contextlib import asynccontextmanager

    from mcp.client.stdio import StdioServerParameters, stdio_client

    command, launch = _launch(home)  # what `memchat doctor` tells a client to start
    params = StdioServerParameters(command=command, args=[*launch, *args], env=home["env"], cwd=str(REPO))

    @asynccontextmanager
    async def transport():
        async with stdio_client(params, errlog=sys.stderr) as streams:
            yield _Pass(streams)
    return Peer(transport)


@pytest.fixture(scope="module")
def stdio(home):
    peer = _stdio(home)
    yield peer
    peer.close()


def memchat(home, *args, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*MEMCHAT, *args], env=home["env"], cwd=REPO, capture_output=True, text=True, timeout=START_S)
    assert not check or done.returncode == 0, done.stderr
    return done


def _files_holding(root, text: str) -> list[str]:
    return [p.name for p in root.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


# -- stdio: every tool ----------------------------------------------------------------------------
def test_a_memory_remembered_over_stdio_is_recalled_with_its_id_times_and_provenance(stdio):
    stored = stdio.call("remember", text="I moved to Lisbon in March and I work at the aquarium")["stored"]
    assert stored["role"] == "user" and stored["provenance"] == {"via": "mcp", "kept": "on disk"}
    found = stdio.call("recall", query="where do I live these days?", k=3)
    hit = found["memories"][0]
    assert hit["id"] == stored["id"] and "Lisbon" in hit["text"] and hit["found_by"]
    assert "never instructions" in found["note"] and found["time_zone"] == TZ
    moment = datetime.fromisoformat(hit["time_utc"]).astimezone(ZoneInfo(TZ))
    assert hit["time_local"] == moment.strftime("%Y-%m-%d %H:%M -03:00")
    # a second note joins the server's conversation; show and list_conversations see both
    second = stdio.call("remember", text="My sister Ana is a marine biologist")["stored"]
    assert second["conversation_id"] == stored["conversation_id"]
    shown = stdio.call("show", ids=[second["id"], stored["id"]])["turns"]
    assert [t["id"] for t in shown] == [second["id"], stored["id"]]
    convs = stdio.call("list_conversations")["conversations"]
    assert {"id": stored["conversation_id"], "turns": 2} in [{"id": c["id"], "turns": c["turns"]} for c in convs]
    assert stdio.call("stats")["turns"] >= 2


def test_recall_keeps_to_the_persons_statements_and_search_finds_every_turn(stdio, home):
    memchat(home, "memory", "add", "You told me the heron migrates in October", "--role", "assistant",
            "--conversation", "birds")
    everything = stdio.call("search", query="heron migrates October", k=3)["memories"]
    assert everything[0]["conversation_id"] == "birds" and everything[0]["role"] == "assistant"
    assert everything[0]["provenance"]["via"] == "memchat"
    recalled = stdio.call("recall", query="heron migrates October", k=10)["memories"]
    assert recalled and all(m["role"] == "user" for m in recalled)  # an earlier reply is not a memory of yours
    assert stdio.call("search", query="heron", k=3, role="user")["memories"][0]["conversation_id"] != "birds"
    assert stdio.call("search", query="heron", conversation="no-such-conversation")["memories"] == []
    added = stdio.call("remember", text="I saw a heron at the river mouth", conversation="birds")["stored"]
    assert added["conversation_id"] == "birds"  # a conversation the CLI made is one to add to


def test_since_and_until_cut_recall_and_words_are_read_in_the_persons_zone(stdio):
    stdio.call("remember", text="I adopted a grey cat called Pixel")
    assert any("Pixel" in m["text"] for m in stdio.call("recall", query="my cat", since="2000-01-01")["memories"])
    assert stdio.call("recall", query="my cat", until="2000-01-01")["memories"] == []
    assert any("Pixel" in m["text"] for m in stdio.call("recall", query="my cat", since="yesterday")["memories"])
    window = stdio.call("recall", query="what did I say about my cat today")["time_window"]
    assert window and window["phrase"] == "today"


@pytest.mark.parametrize("tool, arguments, says", [
    ("remember", {"text": "   "}, "empty text"),
    ("remember", {"text": "x" * 100_001}, "limit"),
    ("remember", {"text": "Kept nowhere: a bad conversation", "conversation": ""}, "conversation"),
    ("recall", {"query": "cat", "k": 0}, "greater than or equal"),
    ("recall", {"query": "cat", "since": "the day after never"}, "since 'the day after never' is not a time"),
    ("recall", {"query": "cat", "since": "2026-05-02", "until": "2026-05-01"}, "is not before"),
    ("search", {"query": "cat", "role": "robot"}, "role 'robot'"),
    ("show", {"ids": [987654]}, "no turn with id 987654"),
    ("show", {"ids": []}, "at least 1"),
    ("forget", {"ids": [987654]}, "nothing was forgotten"),
    ("remember", {"text": "Kept nowhere: a typo'd conversation", "conversation": "brids"},
     "no conversation 'brids'"),  # a typo never starts a conversation of its own
])
def test_bad_arguments_are_a_tool_error_and_nothing_is_stored_or_lost(stdio, tool, arguments, says):
    before = stdio.call("stats")["turns"]
    assert says in stdio.error(tool, **arguments)
    assert stdio.call("stats")["turns"] == before


def test_forget_with_one_missing_id_forgets_nothing_and_names_the_missing_one(stdio):
    stored = stdio.call("remember", text="My gym locker is number 214")["stored"]
    before = stdio.call("stats")["turns"]
    said = stdio.error("forget", ids=[stored["id"], 987655])
    assert said.endswith("no turn with id 987655; nothing was forgotten")  # the missing one only
    assert stdio.call("show", ids=[stored["id"]])["turns"][0]["text"] == stored["text"]
    assert stdio.call("stats")["turns"] == before


def test_forget_erases_the_turn_down_to_the_files_bytes(stdio, home):
    stored = stdio.call("remember", text="My locker code is quokka-7731")["stored"]
    assert _files_holding(home["data"], "quokka-7731")
    assert stdio.call("forget", ids=[stored["id"]]) == {"forgotten": 1, "ids": [stored["id"]]}
    assert "no turn" in stdio.error("show", ids=[stored["id"]])
    assert _files_holding(home["data"], "quokka-7731") == []


def test_a_cli_writer_beside_the_server_sees_its_turns_and_it_sees_the_cli_writers(stdio, home):
    before = stdio.call("stats")["turns"]
    writer = subprocess.Popen([*MEMCHAT, "memory", "add", "I keep bees on the roof of the library", "--json"],
                              env=home["env"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ours = []
    while not ours or writer.poll() is None:  # the server stores all the while the CLI starts, opens and writes
        ours.append(stdio.call("remember", text=f"My bicycle number {len(ours)} is a blue Brompton")["stored"]["id"])
    out, err = writer.communicate(timeout=START_S)
    assert writer.returncode == 0, err
    assert len(ours) > 1  # the writer's whole life overlapped with remember calls
    theirs = json.loads(out)["id"]
    assert stdio.call("stats")["turns"] == before + len(ours) + 1  # nothing lost on either side
    assert stdio.call("recall", query="where do I keep bees?", k=3)["memories"][0]["id"] == theirs
    shown = [t["id"] for at in range(0, len(ours), 100) for t in stdio.call("show", ids=ours[at:at + 100])["turns"]]
    assert shown == ours
    found = json.loads(memchat(home, "memory", "search", "blue Brompton bicycle", "-k", "1000", "--json").stdout)
    assert set(ours) <= {h["id"] for h in found}


def test_a_turn_remembered_through_mcp_is_recalled_by_the_next_chat_reply(stdio, home, embedder):
    from assistant.backends.gemini import GeminiBackend
    from assistant.chat import ChatService
    from memory.memory import Memory
    from memory.profiles import profile_dir
    from tests.standins import StandIn, Step

    stored = stdio.call("remember", text="My dentist is Dr. Okafor, on Rua Augusta")["stored"]
    with StandIn("gemini", [Step(chunks=["Dr. Okafor."])]) as model, \
            Memory(profile_dir(home["data"], "default"), embedder) as memory:
        reply = ChatService(memory, GeminiBackend("gemini-stand-in", "AIzaStandInKey-0123456789abcdef",
                                                  model.url, 10.0)).ask("Who is my dentist?")
    assert reply.status == "ok" and stored["id"] in [h.turn.id for h in reply.memories]
    assert "Dr. Okafor, on Rua Augusta" in json.dumps(model.requests[-1].body)  # in the prompt the model got


def test_recall_says_which_memory_a_later_statement_replaced(stdio):
    old = stdio.call("remember", text="My phone is a Pixel 6")["stored"]["id"]
    new = stdio.call("remember", text="I sold my phone and got an iPhone 15")["stored"]["id"]
    hits = {h["id"]: h for h in stdio.call("recall", query="which phone do I have?", k=5)["memories"]}
    assert hits[old]["superseded_by"] == new and "superseded_by" not in hits[new]


def test_doctor_prints_the_entry_that_started_these_servers(stdio, home, monkeypatch, capsys):
    from assistant.cli import main

    for name, value in home["env"].items():
        monkeypatch.setenv(name, value)
    assert main(["--profile", "work", "doctor"]) == 0
    out = capsys.readouterr().out
    entry = json.loads(out[out.index("{", out.index("MCP clients")):])["mcpServers"]["memchat"]
    command, launch = _launch(home)
    assert entry == {"command": command, "args": [*launch, "--profile", "work"],
                     "env": {"MEMCHAT_DATA_DIR": str(home["data"])}}
    assert os.path.isabs(command) and os.access(command, os.X_OK)


# -- scoped: a profile, read-only, session ----------------------------------------------------------
def test_a_read_only_server_on_a_profile_has_no_writing_tools_and_sees_only_that_profile(home, embedder):
    from memory.memory import Memory
    from memory.profiles import profile_dir

    with Memory(profile_dir(home["data"], "work"), embedder) as work:
        work.remember("The work laptop's asset tag is WX-41")
    reader = _stdio(home, "--profile", "work", "--read-only")
    try:
        assert reader.tools() == {"recall", "search", "show", "list_conversations", "stats"}
        assert "unknown tool" in reader.error("remember", text="Not allowed").lower()
        assert reader.call("stats")["profile"] == "work" and reader.call("stats")["turns"] == 1
        hits = reader.call("recall", query="Lisbon aquarium asset tag", k=5)["memories"]
        assert [h["text"] for h in hits] == ["The work laptop's asset tag is WX-41"]  # nothing of default
    finally:
        reader.close()


def test_a_session_server_remembers_for_its_life_only_and_writes_nothing(home, stdio):
    on_disk = stdio.call("stats")["turns"]
    session = _stdio(home, "--memory", "session")
    try:
        assert "forget" not in session.tools() and "remember" in session.tools()
        stored = session.call("remember", text="My passport renewal appointment is at the consulate of Mars")["stored"]
        assert stored["id"] < 0 and stored["provenance"]["kept"] == "session only"
        again = session.call("remember", text="It is on a Tuesday", conversation=stored["conversation_id"])["stored"]
        assert again["conversation_id"] == stored["conversation_id"]  # its own session conversation, by name
        hits = session.call("recall", query="passport appointment", k=3)["memories"]
        assert stored["id"] in [h["id"] for h in hits]  # beside the stored memories (those come first, in turn)
        assert session.call("show", ids=[stored["id"]])["turns"][0]["text"] == stored["text"]
        assert any("Lisbon" in h["text"] for h in session.call("recall", query="Lisbon aquarium", k=3)["memories"])
        assert session.call("stats")["turns"] == on_disk and session.call("stats")["session_turns"] == 2
    finally:
        session.close()
    assert _files_holding(home["data"], "consulate of Mars") == []
    hits = stdio.call("search", query="passport renewal appointment consulate of Mars", k=5)["memories"]
    assert all("Mars" not in h["text"] for h in hits)  # the persistent server never saw it


# -- Streamable HTTP ------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def http(home):
    port = _free_port()
    server = subprocess.Popen([*MEMCHAT, "mcp", "--http", f"127.0.0.1:{port}"], env=home["env"], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = [server.stdout.readline(), server.stdout.readline()]  # the token is shown this once
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + START_S
    while True:
        try:
            httpx.get(url, timeout=2)
            break
        except httpx.TransportError:
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read()
            time.sleep(0.2)
    state = {"url": url, "port": port, "shown": first, "token": home["token_file"].read_text().strip()}
    yield state
    server.terminate()
    server.wait(30)


def _http_peer(url: str, token: str) -> Peer:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def transport():
        async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as client:
            async with streamable_http_client(url, http_client=client) as streams:
                yield _Pass(streams)
    return Peer(transport)


def test_the_token_is_made_private_and_shown_once(http, home):
    assert "shown this once" in http["shown"][0] and http["shown"][1].strip() == http["token"]
    assert stat.S_IMODE(home["token_file"].stat().st_mode) == 0o600 and len(http["token"]) >= 43


def test_a_second_http_start_does_not_print_the_token_and_makes_a_widened_file_private(http, home):
    os.chmod(home["token_file"], 0o644)  # a copy or an editor widened it
    port = _free_port()
    again = subprocess.Popen([*MEMCHAT, "mcp", "--http", f"127.0.0.1:{port}"], env=home["env"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        said = again.stdout.readline()  # printed before it serves: the token is read (and re-made 0600) first
    finally:
        again.terminate()
        rest = again.communicate(timeout=30)[0]
    token = home["token_file"].read_text().strip()
    assert "HTTP clients send the token kept in" in said and str(home["token_file"]) in said
    assert token not in said + rest and "shown this once" not in said + rest
    assert stat.S_IMODE(home["token_file"].stat().st_mode) == 0o600


def test_the_gate_refuses_every_kind_of_connection_but_the_lifespan_without_the_token(tmp_path, monkeypatch):
    from assistant import mcp_token
    from assistant.mcp_server import BearerGate

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    token = mcp_token.rotate()
    reached, sent = [], []

    async def app(scope, receive, send):  # the SDK's app stands here: what reaches it
        reached.append(scope["type"])

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "websocket.connect"}

    gate = BearerGate(app, token)
    for kind in ("websocket", "http", "webtransport"):
        for headers in ([], [(b"authorization", b"Bearer not-the-token")]):
            asyncio.run(gate({"type": kind, "headers": headers}, receive, send))
    assert reached == [] and [m["type"] for m in sent] == ["websocket.close"] * 2 + [
        "http.response.start", "http.response.body"] * 2
    asyncio.run(gate({"type": "lifespan"}, receive, send))
    asyncio.run(gate({"type": "websocket", "headers": [(b"authorization", f"Bearer {token}".encode())]}, receive, send))
    assert reached == ["lifespan", "websocket"]


def test_the_token_is_written_through_a_new_private_file_only(tmp_path):
    from assistant import mcp_token

    path = tmp_path / "config" / "mcp-token"
    path.parent.mkdir()
    victim = tmp_path / "elsewhere"
    victim.write_text("not the token's to overwrite")
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    os.symlink(victim, partial)  # a leftover partial, or a link planted at its name
    token = mcp_token.rotate(path)
    assert victim.read_text() == "not the token's to overwrite" and not partial.is_symlink()
    assert path.read_text().strip() == token and stat.S_IMODE(path.stat().st_mode) == 0o600
    os.chmod(path, 0o644)
    assert mcp_token.load_or_create(path) == (token, False) and stat.S_IMODE(path.stat().st_mode) == 0o600
    # a write that fails (no room: a file size limit of 0 bytes) leaves no partial file behind
    script = ("import resource, signal, sys; from pathlib import Path; from assistant import mcp_token\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))\n"
              "try:\n    mcp_token.rotate(Path(sys.argv[1]))\nexcept OSError as exc:\n    print(exc.errno)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.strip() == "27", done.stderr  # EFBIG
    assert sorted(p.name for p in path.parent.iterdir()) == ["mcp-token"] and path.read_text().strip() == token


def test_over_http_a_turn_remembered_is_recalled_and_the_cli_sees_it(http, home):
    peer = _http_peer(http["url"], http["token"])
    try:
        stored = peer.call("remember", text="Over HTTP: my favourite tram is the number 28")["stored"]
        assert peer.call("recall", query="favourite tram", k=2)["memories"][0]["id"] == stored["id"]
    finally:
        peer.close()
    found = json.loads(memchat(home, "memory", "search", "favourite tram number 28", "-k", "3", "--json").stdout)
    assert stored["id"] in [h["id"] for h in found]


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-wrong-token-wrong-token-00", "Basic abc"])
def test_a_missing_or_wrong_token_is_refused_before_any_tool_runs(http, home, header):
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "remember", "arguments": {"text": "Smuggled in without a token"}}}
    headers = {"Accept": "application/json, text/event-stream", **({"Authorization": header} if header else {})}
    answer = httpx.post(http["url"], json=call, headers=headers, timeout=10)
    assert answer.status_code == 401 and "bearer token" in answer.json()["error"]
    assert answer.headers["www-authenticate"].startswith("Bearer")
    from mcp.shared.exceptions import MCPError

    with pytest.raises(ExceptionGroup) as refused:  # the SDK's own client gets no session either
        _http_peer(http["url"], "not-the-token")
    assert refused.group_contains(MCPError, match="error response")
    assert _files_holding(home["data"], "Smuggled in") == []


def test_rotating_the_token_refuses_the_old_one_on_the_running_server(http, home):
    done = memchat(home, "mcp", "--rotate-token")
    new = done.stdout.strip().splitlines()[-1]
    assert new == home["token_file"].read_text().strip() != http["token"]
    assert stat.S_IMODE(home["token_file"].stat().st_mode) == 0o600
    old = {"Authorization": f"Bearer {http['token']}", "Accept": "application/json, text/event-stream"}
    assert httpx.post(http["url"], json={}, headers=old, timeout=10).status_code == 401
    http["token"] = new
    peer = _http_peer(http["url"], new)
    try:
        assert "recall" in peer.tools()
    finally:
        peer.close()


def test_a_non_loopback_address_or_a_memory_mode_off_is_refused_with_the_reason(home):
    done = memchat(home, "mcp", "--http", f"0.0.0.0:{_free_port()}", check=False)
    assert done.returncode == 2 and "not a loopback address" in done.stderr and "--allow-remote" in done.stderr
    off = subprocess.run([*MEMCHAT, "mcp"], env={**home["env"], "MEMCHAT_MEMORY": "off"}, cwd=REPO,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=START_S)
    assert off.returncode == 2 and "--memory session" in off.stderr
    assert "Traceback" not in done.stderr + off.stderr


# -- in process: the tools' own refusals and the chat's recall weights ------------------------------
def _tools(root, model_cache, **overrides):
    from assistant.config import load_settings
    from assistant.mcp_tools import MemoryTools

    return MemoryTools(load_settings({"data_dir": root, "model_cache": model_cache, "tz": TZ, **overrides}, env_file=None))


def test_the_session_modes_help_says_the_store_on_disk_is_still_opened_and_read(capsys):
    from assistant.cli import main

    with pytest.raises(SystemExit) as done:
        main(["mcp", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0
    assert "still opens the profile's store on disk" in said and "writes nothing of the session" in said


def test_a_read_only_tools_object_refuses_to_remember_before_opening_anything(tmp_path, model_cache):
    from assistant.config import load_settings
    from assistant.mcp_tools import MemoryTools
    from memory.errors import BadInput

    tools = MemoryTools(load_settings({"data_dir": tmp_path / "data"}, env_file=None), read_only=True)
    with pytest.raises(BadInput, match="does not remember"):
        tools.remember("Not allowed in read-only")
    assert not (tmp_path / "data").exists()


def test_recall_is_the_chats_own_with_the_recency_weight_of_the_settings(tmp_path, model_cache):
    from assistant.chat import recall_notes
    from memory.recall import RecallWeights

    tools = _tools(tmp_path / "data", model_cache, recency_weight=10.0)
    try:
        memory = tools.open()
        for text in ("My favourite fruit is mango, I eat mango every day", "I bought some fruit at the market",
                     "I went to the cinema with my cousin", "Yesterday I cooked fish"):
            memory.remember(text, conversation_id="food")
        query = "what is my favourite fruit?"
        weighted = [h.turn.id for h in recall_notes(memory, query, 3, weights=RecallWeights(recency=10.0))]
        plain = [h.turn.id for h in recall_notes(memory, query, 3)]
        assert weighted != plain  # the data tells the two apart, so the check below can fail
        found = tools.recall(query, k=3)["memories"]
        assert [h["id"] for h in found] == weighted and all("recency" in h["found_by"] for h in found)
        assert tools.recall(query, k=3, until="2000-01-01")["memories"] == []  # since/until: the same recall, cut
    finally:
        tools.close()
