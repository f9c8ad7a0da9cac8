"""The real `memchat` in a real terminal (tmux): type a message, read the answer and the memory panel."""
from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from memory.memory import Memory

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_for(session: str, predicate, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = screen(session)
        if predicate(text):
            return text
        time.sleep(0.3)
    raise AssertionError(f"timed out; the screen was:\n{screen(session)}")


def test_memchat_in_tmux(data_dir, embedder, model_cache, local_backend, tmp_path):
    with Memory(data_dir, embedder) as memory:
        memory.remember("My cat is called Miso and she loves tuna.", conversation_id="pets")
    session = f"memchat-test-{int(time.time() * 1000)}"
    command = (f"MEMCHAT_DATA_DIR={data_dir} MEMCHAT_MODEL_CACHE={model_cache} HF_HUB_OFFLINE=1 "
               f"{sys.executable} -m assistant.cli chat --greedy --max-new-tokens 16")
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "140", "-y", "40", command,
                    ";", "set-option", "-w", "window-size", "manual", ";", "resize-window", "-x", "140", "-y", "40"],
                   check=True)
    try:
        wait_for(session, lambda s: "Message memchat" in s, timeout=30)  # first screen: typing possible
        subprocess.run(["tmux", "send-keys", "-t", session, "What is the name of my cat?", "Enter"], check=True)
        text = wait_for(session, lambda s: "ready" in s and "memchat ─" in s and "recalled (" in s and "tok/s" in s
                        and "– tok/s" not in s)
        assert "What is the name of my cat?" in text
        assert "recalled (1)" in text and "My cat is called" in text  # the memory panel shows the memory
        subprocess.run(["tmux", "send-keys", "-t", session, "C-q"], check=True)
        # The session ends when memchat's process does: only then is the store's lock released.
        deadline = time.monotonic() + 30
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, f"memchat did not exit after Ctrl+Q; the screen was:\n{screen(session)}"
            time.sleep(0.1)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    with Memory(data_dir, embedder) as memory:
        roles = [t.role for t in memory.turns() if t.conversation_id != "pets"]
        assert roles == ["user", "assistant"]
