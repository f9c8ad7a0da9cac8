"""The settings modal: backend, model, vector store, recall and decoding knobs. Returns the changed values."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Switch

from assistant.backends import BACKENDS
from assistant.config import RANGES, range_error
from memory.stores import STORES

NUMBER_FIELDS = {  # setting: (label, type)
    "k": ("memories recalled per reply (k)", int),
    "token_budget": ("prompt token budget", int),
    "temperature": ("temperature", float),
    "top_p": ("top-p", float),
    "top_k": ("top-k", int),
    "max_new_tokens": ("max new tokens", int),
    "repetition_penalty": ("repetition penalty (1.0: off; > 1 makes the reply's own tokens less likely)", float),
    "no_repeat_ngram_size": ("no-repeat n-gram (0: off; never repeat a run of this many tokens)", int),
}


def store_move_refusal(settings, target: str) -> str | None:
    """Why the memory cannot move to `target` now, or None: a hosted store needs its settings."""
    spec = STORES[target]
    if spec.configured(settings.store_settings.get(target, {})):
        return None
    return f"{target} is not set up: set {spec.settings[spec.requires]} and restart memchat"


class SettingsScreen(ModalScreen[dict | None]):
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, settings, store: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.store = store  # the store the open memory uses

    def compose(self) -> ComposeResult:
        s = self.settings
        with VerticalScroll(id="settings"):
            yield Label("backend")
            yield Select([(name, name) for name in BACKENDS], value=s.backend, allow_blank=False, id="backend")
            yield Label("model (empty: the backend's default)")
            yield Input(value=s.model or "", id="model")
            if self.store is not None:
                yield Label("vector store (a change copies every vector from SQLite into it)")
                yield Select([(name, name) for name in STORES], value=self.store, allow_blank=False, id="store")
            for name, (label, _) in NUMBER_FIELDS.items():
                yield Label(label)
                yield Input(value=str(getattr(s, name)), id=name)
            with Horizontal(classes="switch-row"):
                yield Switch(value=s.greedy, id="greedy")
                yield Label("greedy (always the most likely token)")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
            return
        values = {"backend": self.query_one("#backend", Select).value,
                  "model": self.query_one("#model", Input).value.strip() or None,
                  "greedy": self.query_one("#greedy", Switch).value}
        if self.store is not None and self.query_one("#store", Select).value != self.store:
            values["store"] = self.query_one("#store", Select).value
        for name, (label, kind) in NUMBER_FIELDS.items():
            raw = self.query_one(f"#{name}", Input).value.strip()
            try:
                values[name] = kind(raw)
            except ValueError:
                self.notify(f"{label}: {raw!r} is not a number", severity="error")
                return
            if name in RANGES and (problem := range_error(values[name], *RANGES[name])):
                self.notify(f"{label} {problem}", severity="error")  # the same bounds as flags and MEMCHAT_*
                return
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)
