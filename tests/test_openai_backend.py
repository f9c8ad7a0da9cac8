"""`--backend openai`: the real openai SDK against a loopback OpenAI-compatible server (the
Chat Completions streaming protocol, as Ollama, LM Studio, llama.cpp's server and vLLM speak it),
through the chat loop, the CLI, the TUI and `memchat doctor`."""
from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading

import pytest

from assistant.backends import BACKENDS, BackendError, GenerationOptions, StreamState, create_backend
from assistant.backends.openai_chat import OpenAIBackend
from assistant.chat import ChatService
from assistant.cli import main
from assistant.config import load_settings
from memory.memory import Memory
from tests.openai_standin import OpenAIStandIn

KEY = "sk-standin-0123456789abcdefSECRET"
SHORT = GenerationOptions(max_new_tokens=16)


def backend(server: OpenAIStandIn, model: str | None = None, key: str | None = KEY, timeout_s: float = 10.0):
    return OpenAIBackend(model, key, server.url, timeout_s)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- a reply, and what the server was sent ------------------------------------------------------
def test_a_reply_streams_with_memories_usage_and_the_servers_options(memory, data_dir):
    memory.remember("My daughter's piano recital is on June 14 at the town hall.", conversation_id="old")
    with OpenAIStandIn(key=KEY) as server:
        chunks = []
        options = GenerationOptions(temperature=0.3, top_p=0.8, top_k=20, max_new_tokens=16, seed=7,
                                    repetition_penalty=1.0)  # off (the chat's default is 1.1)
        reply = ChatService(memory, backend(server), k=3, options=options).ask("When is the recital?",
                                                                                on_chunk=chunks.append)
    assert reply.status == "ok" and reply.answer == "Hello from the stand-in."
    assert chunks == ["Hello ", "from ", "the ", "stand-in."]  # streamed, word by word
    assert reply.usage["completion_tokens"] == 4 and reply.usage["prompt_tokens"] > 20
    assert reply.model == "llama3.2:1b" and reply.warnings == []  # the server's only model; every option sent
    sent = server.chat_requests()[0]
    assert sent["headers"]["authorization"] == f"Bearer {KEY}"
    body = sent["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["temperature"], body["top_p"], body["top_k"], body["max_tokens"], body["seed"]) == (0.3, 0.8, 20, 16, 7)
    assert "repetition_penalty" not in body  # off: not sent
    assert body["messages"][0]["role"] == "system"
    assert body["messages"][-1]["content"].endswith("at the town hall.\n\nMy question: When is the recital?")
    stored = memory.get(reply.reply_turn_id)
    assert (stored.backend, stored.model, stored.tokens) == ("openai", "llama3.2:1b", 4)
    memory.close()
    for path in data_dir.rglob("*"):
        assert KEY.encode() not in path.read_bytes(), path.name


def test_greedy_and_the_repetition_penalty_go_as_each_server_reads_them():
    with OpenAIStandIn() as server:
        chat = backend(server, "llama3.2:1b")
        options = GenerationOptions(greedy=True, max_new_tokens=8, repetition_penalty=1.3)
        assert "".join(chat.stream([{"role": "user", "content": "hi"}], options, threading.Event(), StreamState()))
    body = server.chat_requests()[0]["body"]
    assert body["temperature"] == 0.0 and body["top_k"] == 1 and "top_p" not in body
    assert body["repetition_penalty"] == 1.3 and body["repeat_penalty"] == 1.3  # vLLM's name; llama.cpp's


def test_api_openai_com_gets_only_openais_own_parameters_and_top_k_is_reported_ignored():
    chat = OpenAIBackend(None, KEY)
    assert chat.model == "gpt-4o-mini" and "top_k" not in chat.supported_options
    body = chat._request([{"role": "user", "content": "hi"}], GenerationOptions(top_k=5, max_new_tokens=9), chat.model)
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body and "extra_body" not in body
    assert GenerationOptions(top_k=5).unsupported(chat.supported_options) == ["top_k"]
    server = OpenAIBackend("m", None, "http://127.0.0.1:9/v1")
    assert "top_k" in server.supported_options and "no_repeat_ngram_size" not in server.supported_options


def test_a_reply_cut_at_max_tokens_is_marked_cut(memory):
    with OpenAIStandIn(reply="one two three four five six seven eight") as server:
        reply = ChatService(memory, backend(server), options=GenerationOptions(max_new_tokens=3)).ask("count")
    assert reply.answer == "one two three " and reply.cut and any("cut at the limit of 3" in w for w in reply.warnings)


def test_cancelling_closes_the_stream_and_keeps_what_streamed(memory):
    cancel = threading.Event()
    with OpenAIStandIn(reply=" ".join(f"word{n}" for n in range(200))) as server:
        server.word_delay_s = 0.02
        reply = ChatService(memory, backend(server), options=GenerationOptions(max_new_tokens=200)).ask(
            "tell me a story", on_chunk=lambda _: cancel.set(), cancel=cancel)
    assert reply.status == "stopped" and reply.answer == "word0 "
    assert memory.get(reply.reply_turn_id).status == "stopped"


def test_the_token_count_learns_the_servers_tokenizer_from_its_usage(memory):
    dense = "a, b; c. d! e? " * 60  # two tokens to three characters, not one to four
    with OpenAIStandIn() as server:
        chat = backend(server)
        before = chat.count_tokens(dense)
        reply = ChatService(memory, chat, k=0, options=SHORT).ask(dense)
    server_count = reply.usage["prompt_tokens"]
    after = sum(chat.count_tokens(m["content"]) + 4 for m in server.chat_requests()[0]["body"]["messages"])
    assert chat.count_tokens(dense) > 2 * before
    assert abs(after - server_count) / server_count < 0.1  # within 10 % of what the server counted


# -- no key, no model named --------------------------------------------------------------------
def test_a_local_server_needs_no_key_and_its_only_chat_model_is_used():
    with OpenAIStandIn(models=("qwen2.5:0.5b", "nomic-embed-text:latest")) as server:
        chat = backend(server, key=None)
        assert chat.model == "auto" and "only chat model" in chat.describe()
        text = "".join(chat.stream([{"role": "user", "content": "hi"}], SHORT, threading.Event(), StreamState()))
    assert text == "Hello from the stand-in." and chat.model == "qwen2.5:0.5b"  # the embedding model is no answer
    assert server.chat_requests()[0]["headers"]["authorization"] == "Bearer no-key"  # a placeholder, never a real key


@pytest.mark.parametrize("models, words", [
    (("llama3.2:1b", "qwen2.5:7b", "nomic-embed-text"), "has 2 models: llama3.2:1b, qwen2.5:7b; choose one with --model"),
    ((), "lists no chat model; load or pull one (Ollama: `ollama pull llama3.2`)"),
])
def test_without_a_model_named_the_error_says_what_the_server_has(models, words):
    with OpenAIStandIn(models=models) as server:
        with pytest.raises(BackendError) as caught:
            list(backend(server).stream([{"role": "user", "content": "hi"}], SHORT, threading.Event(), StreamState()))
    assert words in str(caught.value) and caught.value.kind == "not_found" and server.chat_requests() == []


def test_api_openai_com_without_a_key_fails_before_any_request(data_dir, monkeypatch, capsys):
    with pytest.raises(BackendError) as caught:
        OpenAIBackend(None, None)
    assert caught.value.kind == "missing_key" and "set OPENAI_API_KEY" in str(caught.value)
    assert "MEMCHAT_OPENAI_BASE_URL" in str(caught.value)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MEMCHAT_OPENAI_BASE_URL", raising=False)
    code = main(["ask", "Remember my locker is 4471", "--backend", "openai", "--data-dir", str(data_dir)])
    err = capsys.readouterr().err
    assert code == 1 and "no OpenAI key" in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (data_dir / "memchat.db").exists()  # failed before the store was opened


# -- failures: one line, the key never in it, the message kept ----------------------------------
def test_an_unknown_model_names_the_models_the_server_has(memory):
    with OpenAIStandIn(models=("llama3.2:1b", "qwen2.5:7b")) as server:
        reply = ChatService(memory, backend(server, "llama3"), options=SHORT).ask("Remember my locker is 4471")
    assert reply.status == "failed" and "\n" not in reply.error
    assert "has no model 'llama3' (404); it has: llama3.2:1b, qwen2.5:7b" in reply.error
    user, failed = memory.turns(reply.conversation_id)
    assert user.text == "Remember my locker is 4471" and failed.status == "failed"


def test_a_wrong_key_is_401_and_never_shown(memory):
    wrong = "sk-wrong-key-9876543210SECRET"
    with OpenAIStandIn(key=KEY) as server:  # the server echoes the key it was given, as OpenAI's does
        reply = ChatService(memory, backend(server, "llama3.2:1b", key=wrong), options=SHORT).ask("hello")
    assert reply.status == "failed" and "rejected the key (401); check OPENAI_API_KEY" in reply.error
    assert wrong not in reply.error and wrong not in json.dumps(memory.get(reply.reply_turn_id).meta)


LEAKY = f"Invalid header Authorization: Bearer {KEY}\n(check the proxy in front of the server)"  # two lines


def _no_key_anywhere(memory, reply, data_dir) -> None:
    assert KEY not in reply.error and "\n" not in reply.error and "[redacted]" in reply.error
    assert KEY not in json.dumps(memory.get(reply.reply_turn_id).meta)
    memory.close()
    for path in data_dir.rglob("*"):
        assert KEY.encode() not in path.read_bytes(), path.name


def test_a_400_quoting_the_key_is_one_line_without_it(memory, data_dir):
    with OpenAIStandIn() as server:
        server.failures = [(400, {}, LEAKY)]
        reply = ChatService(memory, backend(server, "llama3.2:1b"), options=SHORT).ask("hello")
    assert reply.status == "failed" and reply.error.startswith(f"the server at {server.url} refused the request (400): ")
    assert reply.error.endswith("(400): Invalid header Authorization: Bearer [redacted] (check the proxy in front "
                                "of the server)") and len(server.chat_requests()) == 1
    _no_key_anywhere(memory, reply, data_dir)


def test_an_error_event_mid_stream_quoting_the_key_keeps_the_part_received_without_it(memory, data_dir):
    with OpenAIStandIn() as server:
        server.stream_error, server.error_after = LEAKY, 2  # two words, then {"error": {...}}
        reply = ChatService(memory, backend(server, "llama3.2:1b"), options=SHORT).ask("hello")
    assert reply.status == "failed" and reply.answer == "Hello from "
    assert reply.error == (f"the server at {server.url} reported an error mid-reply: Invalid header Authorization: "
                           "Bearer [redacted] (check the proxy in front of the server)")
    _no_key_anywhere(memory, reply, data_dir)


def test_a_model_list_refused_quoting_the_key_is_one_line_without_it(memory, data_dir):
    with OpenAIStandIn() as server:
        server.failures = [(400, {}, LEAKY)]
        chat = backend(server)  # no model named: /v1/models is asked first
        with pytest.raises(BackendError) as caught:
            chat.server_models()
        server.failures = [(400, {}, LEAKY)]
        reply = ChatService(memory, chat, options=SHORT).ask("hello")
    assert str(caught.value).startswith(f"the server at {server.url} refused the request (400): ")
    assert KEY not in str(caught.value) and "\n" not in str(caught.value) and "[redacted]" in str(caught.value)
    assert reply.status == "failed" and server.chat_requests() == []
    _no_key_anywhere(memory, reply, data_dir)


def test_429_is_retried_after_retry_after_then_answers_and_gives_up_in_the_end(memory):
    with OpenAIStandIn() as server:
        server.failures = [(429, {"retry-after": "0"}), (503, {"retry-after": "0"})]
        reply = ChatService(memory, backend(server, "llama3.2:1b"), options=SHORT).ask("hello")
        assert reply.status == "ok" and len(server.chat_requests()) == 3
        server.failures = [(429, {"retry-after": "0"})] * 4
        reply = ChatService(memory, backend(server, "llama3.2:1b"), options=SHORT).ask("hello again")
    assert reply.status == "failed" and "rate limit or quota exceeded (429) after retries" in reply.error


def test_no_server_says_how_to_start_one(memory):
    port = free_port()  # nothing listens there
    chat = OpenAIBackend("llama3.2:1b", None, f"http://127.0.0.1:{port}/v1", 5)
    reply = ChatService(memory, chat, options=SHORT).ask("anyone there?")
    assert reply.status == "failed"
    assert reply.error == (f"no server at http://127.0.0.1:{port}/v1: start Ollama (`ollama serve`) "
                           "or set MEMCHAT_OPENAI_BASE_URL")


def test_a_server_that_does_not_answer_in_time_is_one_line(memory):
    with OpenAIStandIn() as server:
        server.stall_s = 1.5
        reply = ChatService(memory, backend(server, "llama3.2:1b", timeout_s=1), options=SHORT).ask("hello?")
    assert reply.status == "failed" and reply.error == (
        f"the server at {server.url} did not answer within 1 s; try again or raise MEMCHAT_TIMEOUT_S")


def test_a_stream_cut_mid_way_keeps_the_part_received(memory):
    with OpenAIStandIn() as server:
        server.cut_after = 2  # two words, then the connection closes mid-body
        reply = ChatService(memory, backend(server, "llama3.2:1b"), options=SHORT).ask("hello")
    assert reply.status == "failed" and "cut the reply off mid-way" in reply.error and reply.answer == "Hello from "
    stored = memory.get(reply.reply_turn_id)
    assert stored.text == "Hello from " and stored.status == "failed"


# -- the table, the TUI, the CLI, doctor ---------------------------------------------------------
def test_the_backend_is_in_the_table_and_reads_memchats_openai_settings(monkeypatch):
    monkeypatch.setenv("MEMCHAT_OPENAI_BASE_URL", "http://127.0.0.1:11434/v1/")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    chat = create_backend(load_settings({"backend": "openai", "timeout_s": 7.0}, env_file=None))
    assert "openai" in BACKENDS and chat.name == "openai" and chat.timeout_s == 7.0
    assert chat._base_url == "http://127.0.0.1:11434/v1" and "the server at http://127.0.0.1:11434/v1" in chat._label


def test_the_tui_switches_to_openai_with_slash_backend(data_dir, model_cache, embedder):
    from assistant.tui.app import MemchatApp
    from assistant.tui.widgets.status_bar import StatusBar
    from assistant.tui.widgets.transcript import TurnView
    from tests.test_tui import SIZE, send, until

    async def run(server):
        settings = load_settings({"data_dir": data_dir, "model_cache": model_cache, "backend": "gemini",
                                  "gemini_api_key": "test-key", "openai_base_url": server.url,
                                  "max_new_tokens": 12}, env_file=None)
        app = MemchatApp(settings)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.ready)
            await send(pilot, "/backend openai")
            await until(pilot, lambda: app.ready and app.conversation.service.backend.name == "openai")
            status = app.query_one(StatusBar)
            assert (status.backend, status.model) == ("openai", "llama3.2:1b")  # found while loading
            await send(pilot, "hello")
            await until(pilot, lambda: app.ready and not app.generating and len(app.query(TurnView)) == 2)
            assert list(app.query(TurnView))[1].source.strip() == "Hello from the stand-in."

    with OpenAIStandIn() as server:
        asyncio.run(run(server))


def test_memchat_ask_backend_openai_talks_to_an_ollama_style_server(data_dir, cli_env):
    from tests.conftest import MEMCHAT

    with OpenAIStandIn(models=("llama3.2:1b", "nomic-embed-text")) as server:
        env = {k: v for k, v in cli_env.items() if k not in ("OPENAI_API_KEY", "MEMCHAT_MODEL")}
        env.update(MEMCHAT_OPENAI_BASE_URL=server.url)
        done = subprocess.run([*MEMCHAT, "ask", "What is my cat called?", "--backend", "openai", "--json"],
                              env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["backend"], out["model"], out["answer"]) == ("openai", "llama3.2:1b", "Hello from the stand-in.")
    assert [r["path"] for r in server.requests] == ["/v1/models", "/v1/chat/completions"]
    assert server.chat_requests()[0]["body"]["messages"][-1]["content"].endswith("What is my cat called?")
    with Memory(data_dir) as memory:
        assert [t.role for t in memory.turns(out["conversation_id"])] == ["user", "assistant"]


def test_doctor_points_at_a_local_server_on_its_usual_port(monkeypatch, capsys, data_dir, embedder):
    from assistant import local_servers

    silent = socket.socket()  # accepts, never answers: the probe's timeout, not a hang
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    with OpenAIStandIn(models=("nomic-embed-text", "llama3.2:1b")) as server:
        monkeypatch.setattr(local_servers, "LOCAL_SERVERS", {
            "Ollama": server.url, "LM Studio": f"http://127.0.0.1:{silent.getsockname()[1]}/v1"})
        assert main(["doctor", "--data-dir", str(data_dir)]) == 0
        out = capsys.readouterr().out
        using = load_settings({"backend": "openai", "openai_base_url": server.url + "/"}, env_file=None)
        assert local_servers.local_server_lines(using)[1] == "    in use (--backend openai, MEMCHAT_OPENAI_BASE_URL)"
    silent.close()
    section = out[out.index("local OpenAI-compatible servers"):]
    assert f"Ollama at {server.url}: 2 models (nomic-embed-text, llama3.2:1b)" in section
    assert (f"to use it: MEMCHAT_BACKEND=openai MEMCHAT_OPENAI_BASE_URL={server.url} "
            "MEMCHAT_MODEL=llama3.2:1b") in section
    assert "LM Studio" not in section  # the silent port is no server
    gone = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    monkeypatch.setattr(local_servers, "LOCAL_SERVERS", {"Ollama": gone})
    assert local_servers.local_server_lines(load_settings(env_file=None)) == [
        f"  none answering (Ollama on {gone.split('/')[2]})"]
    pointed = load_settings({"openai_base_url": gone}, env_file=None)
    assert local_servers.local_server_lines(pointed)[0] == (
        "  MEMCHAT_OPENAI_BASE_URL is Ollama's address, but nothing answers there: start Ollama (`ollama serve`)")


# -- stop sequences (MEMCHAT_STOP, --stop): every remote backend sends them --------------------------
def test_stop_sequences_are_read_from_the_environment_and_flags_and_checked(monkeypatch, capsys):
    monkeypatch.setenv("MEMCHAT_STOP", '["\\nUser:", "###"]')
    assert load_settings(env_file=None).stop == ("\nUser:", "###")
    monkeypatch.setenv("MEMCHAT_STOP", "###")  # not a list: one sequence, as written
    assert load_settings(env_file=None).stop == ("###",)
    assert load_settings({"stop": ["A:", "B:"]}, env_file=None).stop == ("A:", "B:")  # --stop twice
    monkeypatch.setenv("MEMCHAT_STOP", '["a", "b", "c", "d", "e"]')
    code = main(["ask", "hello", "--backend", "openai"])
    err = capsys.readouterr().err
    assert code == 2 and "stop sequences: at most 4" in err and err.count("\n") == 1
    monkeypatch.setenv("MEMCHAT_STOP", '["a", ')
    assert main(["ask", "hello"]) == 2 and "MEMCHAT_STOP" in capsys.readouterr().err
    monkeypatch.delenv("MEMCHAT_STOP")
    from assistant.cli import build_parser

    assert build_parser().parse_args(["ask", "hi", "--stop", "A:", "--stop", "B:"]).stop == ["A:", "B:"]


def test_the_openai_backend_sends_stop_and_the_reply_ends_before_it(memory):
    with OpenAIStandIn(reply="Sure, noted. ### User: and another thing") as server:
        options = GenerationOptions(max_new_tokens=16, stop=("###", "\nUser:"))
        reply = ChatService(memory, backend(server), options=options).ask("note this")
    assert server.chat_requests()[0]["body"]["stop"] == ["###", "\nUser:"]
    assert reply.answer == "Sure, noted. " and reply.warnings == [] and not reply.cut


def test_gemini_and_hf_send_stop_and_the_local_model_says_it_ignores_it(monkeypatch):
    import huggingface_hub.constants

    from assistant.backends.gemini import GeminiBackend
    from assistant.backends.hf import HFBackend
    from assistant.backends.local import LocalBackend
    from tests.standins import StandIn

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the stand-in is loopback
    options = GenerationOptions(max_new_tokens=8, stop=("###",))
    messages = [{"role": "user", "content": "hi"}]
    with StandIn("gemini") as gemini, StandIn("openai") as hf:
        for chat in (GeminiBackend("gemini-stand-in", "AIza-test-key", gemini.url, 10),
                     HFBackend("stand-in-model", "hf_test_token", hf.url + "/v1", 10)):
            assert "".join(chat.stream(messages, options, threading.Event(), StreamState()))
            assert not options.unsupported(chat.supported_options)
    assert gemini.requests[0].body["generationConfig"]["stopSequences"] == ["###"]
    assert hf.requests[0].body["stop"] == ["###"]
    assert options.unsupported(LocalBackend.supported_options) == ["stop"]  # so the reply warns


# -- doctor and a base URL on this machine -----------------------------------------------------
def test_doctor_says_nothing_answers_at_a_loopback_base_url_instead_of_ready(monkeypatch):
    from assistant import local_servers
    from assistant.doctor import backend_readiness

    port = free_port()  # vLLM's :8000, say, with vLLM down
    for url in (f"http://127.0.0.1:{port}/v1", f"http://localhost:{port}/v1", f"http://[::1]:{port}/v1"):
        line = backend_readiness(load_settings({"backend": "openai", "openai_base_url": url}, env_file=None))["openai"]
        assert line == (f"configured, but nothing answers at {url}: start the server there, or change "
                        "MEMCHAT_OPENAI_BASE_URL")
    with OpenAIStandIn() as server:
        named = server.url.replace("127.0.0.1", "localhost") + "/"
        settings = load_settings({"backend": "openai", "openai_base_url": named}, env_file=None)
        assert backend_readiness(settings)["openai"].startswith(f"ready (auto; {named.rstrip('/')}; ")
        monkeypatch.setattr(local_servers, "LOCAL_SERVERS", {"Ollama": server.url})
        assert local_servers.local_server_lines(settings)[1] == "    in use (--backend openai, MEMCHAT_OPENAI_BASE_URL)"
    remote = load_settings({"backend": "openai", "openai_base_url": "http://192.0.2.7:8000/v1"}, env_file=None)
    assert backend_readiness(remote)["openai"].startswith("ready (")  # not on this machine: never contacted
    gone = f"http://127.0.0.1:{port}/v1"
    monkeypatch.setattr(local_servers, "LOCAL_SERVERS", {"Ollama": gone})
    for written in (f"http://localhost:{port}/v1", f"http://localhost:{port}/", f"http://127.0.0.1:{port}"):
        settings = load_settings({"backend": "openai", "openai_base_url": written}, env_file=None)
        assert local_servers.local_server_lines(settings)[0] == ("  MEMCHAT_OPENAI_BASE_URL is Ollama's address, but "
                                                                  "nothing answers there: start Ollama (`ollama serve`)")
        assert backend_readiness(settings)["openai"].startswith("configured, but nothing answers at ")


@pytest.mark.parametrize("a, b, same", [
    ("http://localhost:11434/v1", "http://127.0.0.1:11434/v1", True),
    ("http://[::1]:11434/v1/", "http://127.0.0.1:11434", True),
    ("HTTP://LocalHost:11434/V1", "http://127.0.0.1:11434/v1", False),  # the path is case-sensitive
    ("http://127.0.0.1:11434/v1", "http://127.0.0.1:1234/v1", False),
    ("https://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1", False),
    ("http://127.0.0.1/v1", "http://localhost:80", True),
    ("http://127.0.0.1:11434/api", "http://127.0.0.1:11434/v1", False),
    ("http://127.0.0.1:port/v1", "http://127.0.0.1:port/v1", False),  # no address at all
    (None, "http://127.0.0.1:11434/v1", False),
])
def test_two_base_urls_name_one_server_by_scheme_host_and_port(a, b, same):
    from assistant.local_servers import is_loopback, same_server

    assert same_server(a, b) is same and same_server(b, a) is same
    assert is_loopback("http://localhost:8000/v1") and is_loopback("http://127.0.0.2:8000")
    assert not is_loopback("https://api.openai.com/v1") and not is_loopback("http://192.168.1.5:11434/v1")
