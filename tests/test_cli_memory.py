"""`memchat memory …` as a user runs it: exit codes, JSON shapes, one-line errors."""
from __future__ import annotations

import json
import subprocess

import pytest

from assistant.cli import main
from memory.memory import Memory
from memory.recall import RecallWeights
from memory.turn import MAX_TURN_CHARS
from tests.conftest import MEMCHAT, REPO


@pytest.fixture
def run(data_dir, capsys):
    def _run(*args):
        code = main([*args, "--data-dir", str(data_dir)])
        out, err = capsys.readouterr()
        return code, out, err
    return _run


def test_add_search_stats_json(run, data_dir):
    assert run("memory", "add", "My passport expires in March 2027", "--conversation", "docs")[0] == 0
    assert run("memory", "add", "I like jazz", "--role", "assistant")[0] == 0
    code, out, _ = run("memory", "search", "when does my passport expire", "-k", "1", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 1
    assert {"id", "conversation_id", "role", "text", "created_at", "score"} <= set(hits[0])
    assert hits[0]["conversation_id"] == "docs" and "passport" in hits[0]["text"]
    stats = json.loads(run("memory", "stats", "--json")[1])
    assert stats["turns"] == 2 and stats["indexed"] == 2 and stats["data_dir"] == str(data_dir)


@pytest.mark.parametrize("text, reason", [("", "empty"), ("x" * (MAX_TURN_CHARS + 1), "limit")])
def test_bad_text_exits_2_with_one_line_and_stores_nothing(run, text, reason):
    code, out, err = run("memory", "add", text)
    assert code == 2 and reason in err and err.count("\n") == 1 and "Traceback" not in err
    assert json.loads(run("memory", "stats", "--json")[1])["turns"] == 0


def test_invalid_utf8_on_stdin_exits_2(cli_env):
    proc = subprocess.run([*MEMCHAT, "memory", "add", "-"], input=b"caf\xe9 au lait", env=cli_env,
                          cwd=REPO, capture_output=True)
    assert proc.returncode == 2 and b"not valid UTF-8" in proc.stderr
    stats = subprocess.run([*MEMCHAT, "memory", "stats", "--json"], env=cli_env, cwd=REPO, capture_output=True)
    assert json.loads(stats.stdout)["turns"] == 0


@pytest.mark.parametrize("store", ["faiss", "milvus", "qdrant"])
def test_a_second_process_works_beside_an_open_memory(data_dir, embedder, cli_env, store):
    """Was "store in use" (#12). Milvus Lite and Qdrant's local mode allow one process: the second
    recalls by exact search over SQLite and says so; the first takes its writes in."""
    with Memory(data_dir, embedder, store=store) as first:
        first.remember("The spare tyre is in the garage loft.")
        env = dict(cli_env, MEMCHAT_STORE=store)
        added = subprocess.run([*MEMCHAT, "memory", "add", "My niece Priya turns nine in October."], env=env,
                               cwd=REPO, capture_output=True, text=True)
        found = subprocess.run([*MEMCHAT, "memory", "search", "where is the spare tyre", "-k", "1", "--json"],
                               env=env, cwd=REPO, capture_output=True, text=True)
        assert added.returncode == 0 and found.returncode == 0, added.stderr + found.stderr
        assert "garage loft" in json.loads(found.stdout)[0]["text"]
        assert ("open in another memchat process" in found.stderr) == (store != "faiss")
        assert "Traceback" not in added.stderr + found.stderr
        hits = first.recall("how old is my niece", k=1, weights=RecallWeights.only("dense"))
        assert "Priya" in hits[0].turn.text


def test_forget_needs_confirmation_and_erases(run, data_dir):
    run("memory", "add", "temporary secret plan", "--conversation", "x")
    code, _, err = run("memory", "forget", "--all")  # stdin is not a terminal under pytest
    assert code == 2 and "--yes" in err
    assert run("memory", "forget", "--conversation", "x", "--yes")[0] == 0
    assert json.loads(run("memory", "stats", "--json")[1])["turns"] == 0
    code, _, err = run("memory", "forget", "42", "--yes")
    assert code == 2 and "no turn with id 42" in err


def test_import_export_list_show(run, tmp_path):
    code, out, _ = run("memory", "import", str(REPO / "data" / "sample-memories.jsonl"), "--json")
    assert code == 0 and json.loads(out) == {"format": "jsonl", "profile": "default", "added": 4, "skipped": 0,
                                             "left_out": []}
    code, out, _ = run("memory", "import", str(REPO / "data" / "sample-memories.jsonl"))
    assert "0 turns" in out and "4 already stored" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"nope": 1}\n')
    code, _, err = run("memory", "import", str(bad))
    assert code == 2 and "line 2" in err
    assert json.loads(run("memory", "stats", "--json")[1])["turns"] == 4
    out_file = tmp_path / "export.jsonl"
    assert run("memory", "export", str(out_file))[0] == 0
    assert len(out_file.read_text().splitlines()) == 1 + 4  # the conversation, then its turns
    convs = json.loads(run("memory", "list", "--json")[1])
    assert convs[0]["id"] == "demo" and convs[0]["turns"] == 4
    shown = json.loads(run("memory", "show", "1", "--json")[1])
    assert shown[0]["text"].startswith("My sister Anna")


def test_search_output_does_not_interpret_escape_sequences(run):
    run("memory", "add", "evil \x1b[2J\x1b]0;pwned\x07 text")
    out = run("memory", "search", "evil text")[1]
    assert "\x1b" not in out and "\\x1b[2J" in out


def test_reindex_and_help(run):
    run("memory", "add", "a note to index")
    code, out, _ = run("memory", "reindex")
    assert code == 0 and "1 vectors" in out
    with pytest.raises(SystemExit) as exit_:
        main(["memory", "--help"])
    assert exit_.value.code == 0


def test_storing_and_searching_one_text_loads_no_torch(cli_env, embedder):
    """A script that stores or searches one turn pays for what it uses: ONNX Runtime and the
    tokenizer, not torch and transformers (which took ~10 s a call). `embedder` has exported the
    ONNX copy into the shared model cache, as the first chat or search does for a user."""
    probe = ("import sys; from assistant.cli import main; "
             "codes = [main(['memory', 'add', 'The cabin wifi password is redsparrow12']), "
             "main(['memory', 'add', 'word ' * 400 + 'a long note, split into windows']), "
             "main(['memory', 'search', 'cabin wifi', '-k', '1'])]; "
             "print(codes, sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))")
    done = subprocess.run([*MEMCHAT[:1], "-c", probe], env=cli_env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[0, 0, 0] []"), done.stdout
    assert "redsparrow12" in done.stdout  # the search found the turn the first call stored


def test_import_keeps_every_line_but_one_too_long_and_names_it(run, tmp_path):
    """#24: one line over the limit rejected the whole file; now it is left out and named."""
    path = tmp_path / "journal.jsonl"
    lines = [{"text": "Started the journal."}, {"text": "z" * (MAX_TURN_CHARS + 5)}, {"text": "Day two: rain."}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    code, out, _ = run("memory", "import", str(path), "--json")
    report = json.loads(out)
    assert code == 0 and report["added"] == 2
    assert report["left_out"] == [{"where": f"{path}: line 2", "characters": MAX_TURN_CHARS + 5,
                                   "reason": f"over the {MAX_TURN_CHARS:,} characters a turn holds"}]
    code, out, _ = run("memory", "import", str(path))
    assert code == 0 and "2 already stored" in out
    assert f"left out {path}: line 2: {MAX_TURN_CHARS + 5:,} characters" in out


def test_memory_add_of_a_long_file_stores_it_or_says_how_to_split_it(cli_env, tmp_path):
    """#24: `memory add - < big.txt` past 100,000 characters said only the limit."""
    document = "Minutes of the tenants' meeting\n" + " " * 150_000 + "\nThe roof repair is booked for June."
    added = subprocess.run([*MEMCHAT, "memory", "add", "-", "--json"], input=document, env=cli_env, cwd=REPO,
                           capture_output=True, text=True)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["text"] == document
    refused = subprocess.run([*MEMCHAT, "memory", "add", "-"], input="w" * (MAX_TURN_CHARS + 1), env=cli_env, cwd=REPO,
                             capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"{MAX_TURN_CHARS + 1:,} characters" in refused.stderr and f"split -C {MAX_TURN_CHARS}" in refused.stderr
