"""What the chat app does with its settings (F4, /backend, /model, /k): the modal, and applying what
changed. A new backend or model loads in the background and answers the same conversation; the
other knobs change the conversation's service in place, from the next reply."""
from __future__ import annotations

from assistant.tui import memory_actions
from assistant.tui.screens.settings import SettingsScreen
from assistant.tui.widgets.status_bar import StatusBar


def open_settings(app) -> None:
    store = app.memory.store_name if app.memory is not None else None
    app.push_screen(SettingsScreen(app.settings, store), lambda values: values and apply_settings(app, values))


def apply_settings(app, values: dict) -> None:
    from assistant.backends import BACKENDS, GenerationOptions

    if values.get("backend") not in (None, *BACKENDS):
        app.notify(f"unknown backend {values['backend']!r}; use one of: {', '.join(BACKENDS)}", severity="error")
        return
    if "store" in values:
        memory_actions.move_store(app, values.pop("store"))
    settings = app.settings
    backend_changed = any(values.get(k, getattr(settings, k)) != getattr(settings, k) for k in ("backend", "model"))
    for name, value in values.items():
        setattr(settings, name, value)
    if app.generating:
        app.notify("Settings apply from the next reply.")
    service = app.conversation.service
    if backend_changed or service is None:
        app.ready = False
        app.query_one(StatusBar).state = "loading models…"
        app.load_everything()
        return
    service.k = settings.k
    service.token_budget = settings.token_budget
    service.pin_tokens = settings.pin_tokens
    service.options = GenerationOptions.from_settings(settings)
    app.notify("settings applied")
