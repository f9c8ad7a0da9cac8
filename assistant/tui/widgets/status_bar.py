"""One line at the bottom: backend and model, store and memory count, speed, loading state."""
from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static


class StatusBar(Static):
    backend = reactive("")
    model = reactive("")
    store = reactive("")
    memories = reactive(0)
    tokens_per_s = reactive(0.0)
    state = reactive("starting…")

    def render(self) -> Text:
        speed = f"{self.tokens_per_s:.1f} tok/s" if self.tokens_per_s else "– tok/s"
        return Text.assemble(
            (f" {self.state} ", "reverse" if self.state != "ready" else "bold"),
            f"  {self.backend}:{self.model}  │  {self.store} · {self.memories} memories  │  {speed}",
        )
