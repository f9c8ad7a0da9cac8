"""Search all memories (hybrid), read one whole, forget it or its whole conversation."""
from __future__ import annotations

import time
from datetime import tzinfo

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, ListView, Static

from assistant.tui.screens.dialogs import ConfirmScreen
from assistant.tui.widgets.memory_panel import MemoryItem
from assistant.display import visible
from assistant.localtime import person_tz, shown_time
from memory.timewindow import TimeWindow, parse_window


class MemoryBrowser(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("f", "forget_turn", "forget memory"),
        Binding("c", "forget_conversation", "forget conversation"),
        Binding("o", "open", "open conversation"),
        Binding("p", "pin", "pin"),
    ]

    def __init__(self, query: str = "") -> None:
        super().__init__()
        self.initial_query = query

    def compose(self) -> ComposeResult:
        with Vertical(id="browser"):
            yield Input(value=self.initial_query, placeholder="search all memories (meaning and words)…", id="query")
            with Horizontal():
                yield ListView(id="results")
                with VerticalScroll(id="detail-box"):
                    yield Static("", id="detail", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#results").border_title = "memories"
        self.search(self.initial_query)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.search(event.value)

    def search(self, query: str) -> None:
        """Meaning and words; a time the query names ("the repair last week") is preferred and shown."""
        if query.strip():
            window = parse_window(query, time.time(), self.tz)
            self.app.in_thread(lambda m: m.recall(query, k=50, window=window), lambda h: self.show_hits(h, window))
        else:
            self.app.in_thread(lambda m: m.turns(limit=50, newest_first=True), self.show_turns)

    @property
    def tz(self) -> tzinfo:
        return person_tz(self.app.settings.tz)

    def show_hits(self, hits, window: TimeWindow | None = None) -> None:
        results = self.query_one("#results", ListView)
        results.clear()
        for hit in hits:
            results.append(MemoryItem(hit, self.tz))
        results.border_title = f"memories ({len(hits)})" + (f" · {window.label(self.tz)}" if window else "")
        self.query_one("#detail", Static).update("")
        if hits:
            results.index = 0
            results.focus()

    def show_turns(self, turns) -> None:
        from memory.turn import Hit

        self.show_hits([Hit(turn, 0.0, {}) for turn in turns])

    def _selected(self):
        item = self.query_one("#results", ListView).highlighted_child
        return item.hit.turn if isinstance(item, MemoryItem) else None

    def on_list_view_highlighted(self, event: ListView.Highlighted) -> None:
        turn = self._selected()
        if turn is not None:
            head = f"#{turn.id}  {shown_time(turn.created_at, self.tz)}  {turn.role}  conversation {turn.conversation_id}  ({turn.status})\n\n"
            self.query_one("#detail", Static).update(Text(head, style="bold") + Text(visible(turn.text)))

    def action_forget_turn(self) -> None:
        turn = self._selected()
        if turn is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.app.in_thread(lambda m: m.forget([turn.id]), lambda n: self._after_forget(f"forgot memory #{turn.id}"))

        self.app.push_screen(ConfirmScreen(f"Forget memory #{turn.id}? It is erased for good."), confirmed)

    def action_forget_conversation(self) -> None:
        turn = self._selected()
        if turn is None:
            return
        cid = turn.conversation_id

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.app.in_thread(lambda m: m.forget_conversation(cid),
                                   lambda n: self._after_forget(f"forgot conversation {cid} ({n} turns)"))

        self.app.push_screen(ConfirmScreen(f"Forget the whole conversation {cid}? It is erased for good."), confirmed)

    def _after_forget(self, message: str) -> None:
        self.notify(message)
        from assistant.tui.memory_actions import refresh_after_forget

        refresh_after_forget(self.app)
        self.search(self.query_one("#query", Input).value)

    def action_pin(self) -> None:
        from assistant.tui.pin_actions import pin_turn

        turn = self._selected()
        if turn is not None:
            pin_turn(self.app, turn.id)

    def action_open(self) -> None:
        turn = self._selected()
        if turn is not None:
            self.app.pop_screen()
            self.app.open_conversation(turn.conversation_id, turn.id)
