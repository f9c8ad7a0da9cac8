"""Several memchat processes on one data dir at once (#12): the TUI open while scripts add,
import and ask. Nothing may be lost, and every turn must be found by the next recall anywhere."""
from __future__ import annotations

import asyncio
import json
import subprocess

from assistant.config import load_settings
from assistant.tui.app import MemchatApp
from memory.memory import Memory
from memory.recall import RecallWeights
from tests.conftest import MEMCHAT, REPO
from tests.standins import StandIn
from tests.test_tui import SIZE, send, until

DENSE = RecallWeights.only("dense")
# Words no other turn has: each fact is found by its own, first, or the turn was lost.
ANIMALS = ["axolotl", "capybara", "pangolin", "narwhal", "okapi", "quokka"]
IMPORTED = [f"Imported note {n}: the locker code for gym bag {n} is {1000 + 37 * n}." for n in range(40)]


def _writer(env: dict, words: list[str]) -> subprocess.Popen:
    """One script adding a turn per word, a process each, as a cron job would."""
    lines = [f"{' '.join(MEMCHAT)} memory add 'I saw a {w} at the zoo on my birthday.' --conversation zoo-{w}"
             for w in words]
    return subprocess.Popen(["bash", "-ec", "\n".join(lines)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_tui_and_cli_writers_share_one_memory(data_dir, model_cache, local_backend, cli_env, tmp_path, embedder):
    dump = tmp_path / "notes.jsonl"
    dump.write_text("".join(json.dumps({"text": t, "conversation_id": "gym", "created_at": f"2025-03-01T10:{i:02d}:00Z"}) + "\n"
                            for i, t in enumerate(IMPORTED)))

    async def run() -> tuple[dict, list]:
        with StandIn("gemini") as server:
            env = dict(cli_env, MEMCHAT_BACKEND="gemini", GEMINI_API_KEY="test-key", MEMCHAT_GEMINI_BASE_URL=server.url)
            settings = load_settings({"data_dir": data_dir, "model_cache": model_cache, "backend": "gemini",
                                      "gemini_api_key": "test-key", "gemini_base_url": server.url}, env_file=None)
            app = MemchatApp(settings)
            async with app.run_test(size=SIZE) as pilot:
                await until(pilot, lambda: app.ready)
                procs = [_writer(env, ANIMALS[:3]), _writer(env, ANIMALS[3:]),
                         subprocess.Popen([*MEMCHAT, "memory", "import", str(dump)], env=env, cwd=REPO,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
                         subprocess.Popen([*MEMCHAT, "ask", "Remind me: what is a quokka?", "--json"], env=env,
                                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
                for n in range(3):  # the person chats in the TUI meanwhile
                    await send(pilot, f"Note {n}: my marmot{n} plush toy is on shelf {n}.")
                    await until(pilot, lambda: not app.generating and not app.conversation.queue, timeout=120)
                outcomes = []
                for proc in procs:
                    out, err = await asyncio.to_thread(proc.communicate, timeout=300)
                    outcomes.append((proc.returncode, err))
                found = {}
                for word in ANIMALS:
                    hits = await asyncio.to_thread(app.memory.recall, f"a {word} at the zoo", 1, None, DENSE)
                    found[word] = hits[0].turn.text if hits else ""
                code = await asyncio.to_thread(app.memory.recall, "locker code for gym bag 17", 1, None, DENSE)
                found["import"] = code[0].turn.text if code else ""
                found["stats"] = await asyncio.to_thread(app.memory.stats)
            return found, outcomes

    found, outcomes = asyncio.run(run())
    assert all(code == 0 and "Traceback" not in err for code, err in outcomes), outcomes
    for word in ANIMALS:  # each script's turn, recalled first by the TUI's index
        assert word in found[word]
    assert "bag 17 is 1629" in found["import"]
    stats = found["stats"]
    # 6 added, 40 imported, 2 from ask (question, reply), 6 from the TUI (3 messages, 3 replies)
    assert stats["turns"] == 6 + 40 + 2 + 6 == stats["indexed"] == stats["vectors"]
    with Memory(data_dir, embedder) as memory:  # and a later process finds the TUI's turns
        assert memory.sync_index() == "current"
        assert "marmot1" in memory.recall("the marmot1 plush toy", k=1, weights=DENSE)[0].turn.text
