"""The memories recalled for the latest reply: score, date, role, conversation, text."""
from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Label, ListItem, ListView

from assistant.display import visible


class MemoryItem(ListItem):
    def __init__(self, hit) -> None:
        turn = hit.turn
        header = Text(f"{hit.score:.3f}  {turn.created_iso[:10]}  {turn.role}  [{turn.conversation_id}]", style="dim")
        body = Text(visible(turn.text[:300]))  # a Text object: no markup is parsed from stored text
        super().__init__(Label(header), Label(body))
        self.hit = hit


class MemoryPanel(ListView):
    """Select a memory to open its conversation at that turn."""

    class Open(Message):
        def __init__(self, conversation_id: str, turn_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.turn_id = turn_id

    def show_hits(self, hits) -> None:
        self.clear()
        if not hits:
            self.append(ListItem(Label(Text("No memories recalled for this reply.", style="dim"))))
        for hit in hits:
            self.append(MemoryItem(hit))
        self.border_title = f"recalled ({len(hits)})"

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, MemoryItem):
            event.stop()
            turn = event.item.hit.turn
            self.post_message(self.Open(turn.conversation_id, turn.id))
