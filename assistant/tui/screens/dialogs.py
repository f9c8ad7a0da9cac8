"""Small modal screens: confirm a destructive action, help."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Markdown


class ConfirmScreen(ModalScreen[bool]):
    """Yes/No; Y or N on the keyboard, Escape says no."""

    BINDINGS = [Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Yes, forget", variant="error", id="yes")
                yield Button("Cancel", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


HELP = """\
# memchat

Everything you write, and every reply, is stored and remembered. Each reply recalls related
memories from **all** your conversations; the panel on the right shows which.

## Keys
| key | does |
|---|---|
| Enter | send |
| Ctrl+J (Shift+Enter where the terminal reports it) | new line |
| Up / Down (first / last line) | earlier inputs |
| Escape or Ctrl+C while a reply streams | stop it (what streamed is kept) |
| F2 | show or hide the memory panel |
| F3 | memory browser: search, view, forget |
| F4 | settings |
| Ctrl+N | new conversation |
| Ctrl+P | command palette |
| Ctrl+Q (or Ctrl+C when idle) | quit |

## Slash commands
| command | does |
|---|---|
| `/new` | start a new conversation |
| `/rename TITLE` | rename this conversation |
| `/backend local\\|gemini\\|hf` | switch model backend |
| `/model NAME` | switch model |
| `/k N` | memories recalled per reply |
| `/search QUERY` | open the memory browser with a search |
| `/forget` | forget this whole conversation (asks first) |
| `/delete` | same as /forget |
| `/export [FILE]` | write all memories to a JSONL file |
| `/help` | this page |
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help"):
            yield Markdown(HELP)

    def action_dismiss(self) -> None:
        self.dismiss(None)
