"""The transcript: one Markdown block per turn; the reply being generated grows as tokens arrive.

A streaming reply goes through Textual's MarkdownStream, which appends each fragment to the
document (parsing only what is new) and batches fragments that arrive faster than it can draw.
"""
from __future__ import annotations

from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from assistant.display import visible


class TurnView(Markdown):
    """One turn. Markdown (code blocks highlighted); Rich markup in the text is never interpreted."""

    def __init__(self, role: str, text: str, status: str = "ok", turn_id: int | None = None) -> None:
        super().__init__(visible(text), classes=f"turn {role} {status.split()[0]}")
        self.role = role
        self.turn_id = turn_id
        self.border_title = {"user": "you", "assistant": "memchat"}.get(role, role)
        if status != "ok":
            self.border_subtitle = status


CUT = "cut at the token limit"  # a reply that reached max_new_tokens: it may end mid-sentence


class Transcript(VerticalScroll):
    """The conversation on screen. `start_reply` returns the widget a streaming reply writes into."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._reply: TurnView | None = None
        self._stream: MarkdownStream | None = None
        self._reply_text = ""

    def show_turns(self, turns, remembers: str) -> None:
        """`remembers`: what the conversation keeps, said on an empty one (it differs by memory mode)."""
        self.remove_children()
        if not turns:
            self.mount(Static(f"Say something. {remembers}; /help lists commands.", classes="hint", markup=False))
        for turn in turns:
            cut = turn.status == "ok" and turn.meta.get("finish_reason") == "length"
            self.mount(TurnView(turn.role, turn.text, CUT if cut else turn.status, turn.id))
        self.scroll_end(animate=False)

    def add_user(self, text: str) -> None:
        for hint in self.query(".hint"):
            hint.remove()
        self.mount(TurnView("user", text))
        self.scroll_end(animate=False)

    def start_reply(self) -> None:
        self._reply_text = ""
        self._reply = TurnView("assistant", "", "ok")
        self._reply.border_subtitle = "…"
        self.mount(self._reply)
        self._stream = Markdown.get_stream(self._reply)
        self.scroll_end(animate=False)

    async def append_reply(self, chunk: str) -> None:
        if self._stream is None or not chunk:
            return
        if not self._reply_text:
            self._reply.border_subtitle = ""
        self._reply_text += chunk
        await self._stream.write(visible(chunk))
        self.scroll_end(animate=False)

    async def finish_reply(self, status: str, turn_id: int | None, error: str | None = None) -> None:
        if self._reply is None:
            return
        reply, self._reply = self._reply, None
        if self._stream is not None:
            await self._stream.stop()  # draws whatever is still pending
            self._stream = None
        reply.turn_id = turn_id
        status = CUT if status == "cut" else status
        reply.border_subtitle = "" if status == "ok" else status
        if status != "ok":
            reply.add_class(status.split()[0])
            if not self._reply_text.strip():
                await reply.update(visible(f"*({error or status})*"))

    def scroll_to_turn(self, turn_id: int) -> None:
        for view in self.query(TurnView):
            if view.turn_id == turn_id:
                view.add_class("highlight")
                self.scroll_to_widget(view, animate=False, top=True)
