"""The memories recalled for the latest reply: score, local time, role, conversation, text; and the
time window the message named, when it named one (a hit inside it is marked)."""
from __future__ import annotations

from datetime import tzinfo

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Label, ListItem, ListView

from assistant.display import visible
from assistant.localtime import person_tz, shown_time
from memory.timewindow import TimeWindow, warm_up


class MemoryItem(ListItem):
    def __init__(self, hit, tz: tzinfo, newer=None) -> None:
        """`newer`: the recalled statement that supersedes this one (memory/changes.py), if any."""
        turn = hit.turn
        mark = "  in the window" if "window" in hit.signals else ""
        if newer is not None:
            mark += f"  superseded by #{newer.turn.id} of {shown_time(newer.turn.created_at, tz)}"
        header = Text(f"{hit.score:.3f}  {shown_time(turn.created_at, tz)}  {turn.role}  [{turn.conversation_id}]{mark}",
                      style="dim")
        body = Text(visible(turn.text[:300]))  # a Text object: no markup is parsed from stored text
        super().__init__(Label(header), Label(body))
        self.hit = hit


class MemoryPanel(ListView):
    """Select a memory to open its conversation at that turn; P pins it (a standing memory)."""

    BINDINGS = [Binding("p", "pin", "pin")]

    class Open(Message):
        def __init__(self, conversation_id: str, turn_id: int) -> None:
            super().__init__()
            self.conversation_id = conversation_id
            self.turn_id = turn_id

    def on_mount(self) -> None:
        # The time parser's first call takes ~1 s (dateparser's tables): made now, beside the
        # embedder's warm-up, not on the first message that names a time.
        self.run_worker(warm_up, thread=True, group="warm-up")

    def show_hits(self, hits, window: TimeWindow | None = None, superseded: dict[int, int] | None = None,
                  standing: int = 0) -> None:
        """`window`: the time the message named, which recall preferred; `superseded`: {older turn
        id: newer turn id} among the hits, the older shown as superseded, with both dates;
        `standing`: how many standing memories (pins) the prompt held besides."""
        tz = person_tz(self.app.settings.tz)
        by_id = {hit.turn.id: hit for hit in hits}
        self.clear()
        if not hits:
            self.append(ListItem(Label(Text("No memories recalled for this reply.", style="dim"))))
        for hit in hits:
            self.append(MemoryItem(hit, tz, by_id.get((superseded or {}).get(hit.turn.id))))
        self.border_title = (f"recalled ({len(hits)})" + (f" · {standing} standing" if standing else "")
                             + (f" · {window.label(tz)}" if window else ""))

    def action_pin(self) -> None:
        from assistant.tui.pin_actions import pin_turn

        if isinstance(self.highlighted_child, MemoryItem):
            pin_turn(self.app, self.highlighted_child.hit.turn.id)

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, MemoryItem):
            event.stop()
            turn = event.item.hit.turn
            self.post_message(self.Open(turn.conversation_id, turn.id))
