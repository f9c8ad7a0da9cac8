"""Conversations, most recent first. Select one to switch to it."""
from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Label, ListItem, ListView

from assistant.display import visible


class ConversationItem(ListItem):
    def __init__(self, conversation: dict) -> None:
        title = conversation["title"] or f"conversation {conversation['id'][:6]}"
        super().__init__(Label(Text(visible(title)[:40])), Label(Text(f"{conversation['turns']} turns", style="dim")))
        self.conversation_id = conversation["id"]


class ConversationList(ListView):
    class Switch(Message):
        def __init__(self, conversation_id: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    def show(self, conversations: list[dict], current: str | None) -> None:
        self.clear()
        for index, conversation in enumerate(conversations):
            self.append(ConversationItem(conversation))
            if conversation["id"] == current:
                self.index = index
        self.border_title = f"conversations ({len(conversations)})"

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, ConversationItem):
            event.stop()
            self.post_message(self.Switch(event.item.conversation_id))
