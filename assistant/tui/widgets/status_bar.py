"""One line at the bottom: loading state, profile and memory mode, backend and model, speed, store
and memory count."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusBar(Static):
    backend = reactive("")
    model = reactive("")
    store = reactive("")
    profile = reactive("default")
    mode = reactive("persistent")
    private = reactive(False)  # the next message is kept out of memory
    memories = reactive(0)
    tokens_per_s = reactive(0.0)
    state = reactive("starting…")

    def render(self) -> Text:
        # Whose memory and what is kept come first: they matter most, and a narrow terminal cuts the end.
        speed = f"{self.tokens_per_s:.1f} tok/s" if self.tokens_per_s else "– tok/s"
        private = (" next message private ", "reverse") if self.private else ""
        return Text.assemble(
            (f" {self.state} ", "reverse" if self.state != "ready" else "bold"),
            f" {self.profile} · {self.mode} ", private,
            f"│ {self.backend}:{self.model} │ {speed} │ {self.store} · {self.memories} memories",
        )
