"""The message box: multi-line, Enter sends, Ctrl+J inserts a newline, Up/Down recall history."""
from __future__ import annotations

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea


class PromptInput(TextArea):
    """Enter sends; Ctrl+J (or Shift+Enter, where the terminal reports it) inserts a newline.
    Up on the first line and Down on the last walk through earlier inputs."""

    BINDINGS = [
        Binding("up", "history_back", "previous input", show=False),
        Binding("down", "history_forward", "next input", show=False),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, past_inputs: list[str] | None = None, **kwargs) -> None:
        super().__init__(soft_wrap=True, show_line_numbers=False, tab_behavior="focus", **kwargs)
        self.past_inputs: list[str] = list(past_inputs or [])
        self._position: int | None = None  # index into past_inputs while browsing it
        self._draft = ""

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.prevent_default()
            event.stop()
            self.submit()
        elif event.key in ("ctrl+j", "shift+enter"):
            event.prevent_default()
            event.stop()
            self.insert("\n")

    def submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        if not self.past_inputs or self.past_inputs[-1] != text:
            self.past_inputs.append(text)
        self._position = None
        self.clear()
        self.post_message(self.Submitted(text))

    def action_history_back(self) -> None:
        if self.cursor_location[0] > 0 or not self.past_inputs:
            self.action_cursor_up()
            return
        if self._position is None:
            self._draft = self.text
            self._position = len(self.past_inputs)
        self._position = max(0, self._position - 1)
        self._show(self.past_inputs[self._position])

    def action_history_forward(self) -> None:
        if self._position is None or self.cursor_location[0] < self.document.line_count - 1:
            self.action_cursor_down()
            return
        self._position += 1
        if self._position >= len(self.past_inputs):
            self._position = None
            self._show(self._draft)
        else:
            self._show(self.past_inputs[self._position])

    def _show(self, text: str) -> None:
        self.text = text
        self.move_cursor(self.document.end)
