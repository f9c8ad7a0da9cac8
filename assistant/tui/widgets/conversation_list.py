"""Conversations, most recent first. Select one to switch to it."""
from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import Label, ListItem, ListView

from assistant.display import visible


class ConversationItem(ListItem):
    def __init__(self, conversation: dict) -> None:
        super().__init__(*(Label(text) for text in _labels(conversation)))
        self.conversation_id = conversation["id"]

    def relabel(self, conversation: dict) -> None:
        for label, text in zip(self.query(Label), _labels(conversation)):
            label.update(text)


def _labels(conversation: dict) -> tuple[Text, Text]:
    title = conversation["title"] or f"conversation {conversation['id'][:6]}"
    return Text(visible(title)[:40]), Text(f"{conversation['turns']} turns", style="dim")


class ConversationList(ListView):
    class Switch(Message):
        def __init__(self, conversation_id: str) -> None:
            super().__init__()
            self.conversation_id = conversation_id

    def show(self, conversations: list[dict], current: str | None) -> None:
        """Show the list; when only titles and counts changed (after most replies), relabel the
        items in place rather than rebuild them, so a click landing meanwhile is not lost."""
        ids = [c["id"] for c in conversations]
        items = list(self.query(ConversationItem))
        if [item.conversation_id for item in items] == ids:
            for item, conversation in zip(items, conversations):
                item.relabel(conversation)
        else:
            self.clear()
            self.extend(ConversationItem(conversation) for conversation in conversations)
        if current in ids:
            self.index = ids.index(current)
        self.border_title = f"conversations ({len(conversations)})"

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, ConversationItem):
            event.stop()
            self.post_message(self.Switch(event.item.conversation_id))
