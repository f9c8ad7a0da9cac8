"""Settings: which .env is read, keys never shown, counts checked, backends from one table.

Each test runs `memchat` through `cli.main` in a throwaway home: XDG_CONFIG_HOME and XDG_DATA_HOME
point into tmp_path, so neither the developer's config nor their memories are touched.
"""
from __future__ import annotations

import pytest

from assistant import cli
from assistant.config import ENV_NAMES

KEYS = {"GEMINI_API_KEY": "AIza-gemini-secret-0001", "HF_TOKEN": "hf_secret_token_0002",
        "OPENAI_API_KEY": "sk-openai-secret-0003", "PINECONE_API_KEY": "pcsk-pinecone-secret-0004",
        "QDRANT_API_KEY": "qdrant-secret-0005", "WEAVIATE_API_KEY": "weaviate-secret-0006",
        "MEMCHAT_MILVUS_TOKEN": "milvus-secret-0007"}
PASSWORDS = {"MEMCHAT_PG_URL": ("postgresql://me:pg-password-0008@db.example/memchat", "pg-password-0008"),
             "MEMCHAT_HF_BASE_URL": ("http://me:hf-url-password-0009@tgi.example/v1", "hf-url-password-0009")}


@pytest.fixture
def home(tmp_path, monkeypatch, model_cache):
    """A clean environment: no memchat variables, config and data dirs inside tmp_path."""
    for names in ENV_NAMES.values():
        for var in names:
            monkeypatch.delenv(var, raising=False)
    for var in [*KEYS, *PASSWORDS]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "share"))
    monkeypatch.setenv("MEMCHAT_MODEL_CACHE", str(model_cache))
    work = tmp_path / "cloned-repo"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


# -- which .env ------------------------------------------------------------------------------

def test_a_dotenv_in_the_current_directory_is_ignored(home, capsys, embedder):
    hostile = home / "elsewhere"
    (home / "cloned-repo" / ".env").write_text(f"MEMCHAT_DATA_DIR={hostile}\nMEMCHAT_BACKEND=hf\n"
                                               "MEMCHAT_HF_BASE_URL=http://attacker.example/v1\n")
    code, out, _ = run(["doctor"], capsys)
    assert code == 0
    assert str(hostile) not in out and "attacker.example" not in out
    assert f"data dir: {home / 'share' / 'memchat'}" in out
    assert f"no .env read (memchat looks for {home / 'config' / 'memchat' / '.env'}" in out
    assert "./.env is not read" in out and "--env-file .env reads it" in out
    assert not hostile.exists()


def test_the_config_dirs_dotenv_is_read(home, capsys, embedder):
    env_file = home / "config" / "memchat" / ".env"
    env_file.parent.mkdir(parents=True)
    env_file.write_text(f"MEMCHAT_DATA_DIR={home / 'mine'}\n")
    code, out, _ = run(["doctor"], capsys)
    assert code == 0
    assert f"data dir: {home / 'mine'}" in out and f".env read: {env_file}" in out


def test_env_file_reads_the_file_named(home, capsys, embedder):
    named = home / "project.env"
    named.write_text(f"MEMCHAT_DATA_DIR={home / 'project-data'}\n")
    code, out, _ = run(["doctor", "--env-file", str(named)], capsys)
    assert code == 0
    assert f"data dir: {home / 'project-data'}" in out and f".env read: {named} (--env-file)" in out


def test_env_file_that_does_not_exist_is_one_line_and_exit_2(home, capsys):
    code, out, err = run(["--env-file", str(home / "missing.env"), "memory", "list"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--env-file" in err and "missing.env" in err


# -- keys never shown --------------------------------------------------------------------------

def test_repr_str_and_doctor_never_show_a_key(home, capsys, monkeypatch, embedder):
    from rich.pretty import pretty_repr

    from assistant.config import load_settings

    for var, key in KEYS.items():
        monkeypatch.setenv(var, key)
    for var, (url, _) in PASSWORDS.items():
        monkeypatch.setenv(var, url)
    settings = load_settings()
    assert settings.gemini_api_key == KEYS["GEMINI_API_KEY"]  # they are read, and held
    assert settings.store_settings["pgvector"]["url"] == PASSWORDS["MEMCHAT_PG_URL"][0]
    code, out, err = run(["doctor"], capsys)
    assert code == 0
    # rich.pretty is what Textual's and rich's tracebacks use to print local variables
    for shown in (repr(settings), str(settings), pretty_repr(settings), out + err):
        leaked = [s for s in [*KEYS.values(), *(p for _, p in PASSWORDS.values())] if s in shown]
        assert leaked == [], shown
    assert "gemini_api_key='set (hidden)'" in repr(settings)


# -- counts and ranges ------------------------------------------------------------------------

@pytest.mark.parametrize("argv, option", [
    (["memory", "search", "anything", "-k", "-3"], "-k"),
    (["memory", "search", "anything", "-k", "10000000"], "-k"),
    (["memory", "list", "-n", "0"], "-n"),
    (["memory", "show", "99999999999999999999"], "ids"),
    (["ask", "hello", "-k", "-1"], "-k"),
    (["ask", "hello", "--token-budget", "0"], "--token-budget"),
    (["ask", "hello", "--max-new-tokens", "-5"], "--max-new-tokens"),
    (["ask", "hello", "--temperature", "-1"], "--temperature"),
    (["ask", "hello", "--top-p", "7"], "--top-p"),
    (["ask", "hello", "--repetition-penalty", "0.5"], "--repetition-penalty"),  # below 1 would reward loops
    (["chat", "--no-repeat-ngram", "-1"], "--no-repeat-ngram"),
    (["eval", "repetition", "x.txt", "--penalties", "1.0,9"], "--penalties"),
    (["eval", "locomo", "x.json", "-k", "0"], "-k"),
    (["eval", "locomo", "x.json", "--max-questions", "-2"], "--max-questions"),
    (["bench", "--queries", "0"], "--queries"),
    (["bench", "--sizes", "1000,-5"], "--sizes"),
    (["bench", "--embed-limit", "0"], "--embed-limit"),
    (["bench", "--soak", "-5"], "--soak"),  # 0 ran the whole default bench; under 400 is soak's own check
])
def test_a_count_out_of_range_is_refused_in_one_line(argv, option, home, capsys, embedder):
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and f"argument {option}" in err and "at least" in err and "at most" in err, err


@pytest.mark.parametrize("var, raw", [("MEMCHAT_K", "-3"), ("MEMCHAT_TOKEN_BUDGET", "0"),
                                      ("MEMCHAT_MAX_NEW_TOKENS", "1000000000"), ("MEMCHAT_TOP_K", "0"),
                                      ("MEMCHAT_TIMEOUT_S", "-1"), ("MEMCHAT_TEMPERATURE", "nan"),
                                      ("MEMCHAT_REPETITION_PENALTY", "3"), ("MEMCHAT_NO_REPEAT_NGRAM", "-1")])
def test_a_setting_out_of_range_in_the_environment_is_refused(var, raw, home, capsys, monkeypatch, embedder):
    monkeypatch.setenv(var, raw)
    code, out, err = run(["memory", "list"], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and var in err and "at least" in err and "at most" in err, err


def test_ask_k_0_means_recall_nothing_and_is_allowed():
    assert cli.build_parser().parse_args(["ask", "hello", "-k", "0"]).k == 0


# -- backends from one table -------------------------------------------------------------------

class EchoBackend:
    """A backend made here, registered with one entry, to show that one entry is all it takes."""

    name = "echo"
    supported_options = frozenset()

    def __init__(self, model, timeout_s):
        self.model = model or "echo-1"
        self.timeout_s = timeout_s

    def stream(self, messages, options, cancel, state):
        yield messages[-1]["content"]

    def count_tokens(self, text):
        return len(text.split())


def test_a_backend_is_one_entry_in_the_table(monkeypatch):
    from assistant.backends import BACKENDS, BackendSpec, create_backend
    from assistant.config import load_settings
    from assistant.doctor import backend_readiness

    monkeypatch.setitem(BACKENDS, "echo", BackendSpec("echo", "tests.test_config", "EchoBackend", ("timeout_s",)))
    settings = load_settings({"backend": "echo", "timeout_s": 5.0}, env_file=None)
    backend = create_backend(settings)
    assert isinstance(backend, EchoBackend) and backend.timeout_s == 5.0
    assert cli.build_parser().parse_args(["ask", "hi", "--backend", "echo"]).backend == "echo"
    assert backend_readiness(settings)["echo"].startswith("ready (echo-1")
