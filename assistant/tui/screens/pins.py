"""The standing memories (pinned turns), newest pin first, with unpin: `/pins` opens it."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Label, ListItem, ListView, Static

from assistant.display import visible
from assistant.localtime import person_tz, shown_time


class PinItem(ListItem):
    def __init__(self, turn, tz) -> None:
        header = Text(f"#{turn.id}  pinned {shown_time(turn.pinned_at, tz)}  said {shown_time(turn.created_at, tz)}",
                      style="dim")
        super().__init__(Label(header), Label(Text(visible(turn.text[:300]))))  # Text: no markup parsed
        self.turn = turn


class PinsScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("u", "unpin", "unpin"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="pins-box"):
            yield Static("Standing memories go into every prompt, newest first, whatever you ask. "
                         "Unpinning keeps the turn stored; forgetting it (F3) erases it.", id="pins-help")
            yield ListView(id="pins")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def load(self) -> None:
        self.app.in_thread(lambda memory: memory.pins(), self.show)

    def show(self, pinned) -> None:
        tz = person_tz(self.app.settings.tz)
        view = self.query_one("#pins", ListView)
        view.clear()
        for turn in pinned:
            view.append(PinItem(turn, tz))
        if not pinned:
            view.append(ListItem(Label(Text("No standing memories yet: /pin pins your last message.", style="dim"))))
        view.border_title = f"standing memories ({len(pinned)})"
        view.index = 0
        view.focus()

    def action_unpin(self) -> None:
        item = self.query_one("#pins", ListView).highlighted_child
        if isinstance(item, PinItem):
            turn_id = item.turn.id
            self.app.in_thread(lambda memory: memory.unpin(turn_id),
                               lambda _: (self.notify(f"unpinned #{turn_id}; it stays stored"), self.load()))
