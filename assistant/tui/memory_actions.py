"""What the chat app does to its memory on a command: rename, forget, export, move the vectors,
switch profile, change the memory mode, keep the next message private. Each takes the app and
runs any store work in its worker thread (`app.in_thread`), never on the UI thread."""
from __future__ import annotations

import time
from pathlib import Path

from assistant.config import MEMORY_MODES, store_options
from assistant.tui.screens.dialogs import ConfirmScreen
from assistant.tui.screens.settings import store_move_refusal
from assistant.tui.widgets.status_bar import StatusBar
from assistant.tui.widgets.transcript import Transcript


def _stored_id(app) -> str | None:
    """The open conversation's id if the store may hold it (the store says, in the worker)."""
    conversation = app.conversation
    return conversation.id if conversation.mode == "persistent" else None


DEFERRED_EVERY_S = 30.0  # how often an idle app retries a forget a hosted store's outage held back


def send_deferred_deletes(app) -> None:
    """A forget a hosted store's outage held back leaves it once it answers, even while idle."""
    if app.memory is not None and app.memory.deletes_deferred and not app.store_lock.locked():
        app.in_thread(lambda memory: memory.retry_deferred())


def rename_current(app, title: str) -> None:
    cid = _stored_id(app)
    if cid is None:
        app.notify("This conversation is not in the store (yet): nothing to rename.", severity="warning")
        return
    app.in_thread(lambda m: m.rename_conversation(cid, title), lambda _: app.refresh_lists())


def refresh_after_forget(app) -> None:
    """The open conversation as a forget left it, and the lists."""
    conversation = app.conversation
    if conversation.id is not None and conversation.mode == "persistent":
        cid = conversation.id
        app.in_thread(lambda m: m.turns(cid) if m.has_conversation(cid) else None, lambda turns: _show_left(app, turns))
    app.refresh_lists()


def _show_left(app, turns) -> None:
    if turns is None:  # all of it was forgotten: what is typed next starts a new one
        app.conversation.id = None
        turns = []
    app.query_one(Transcript).show_turns(turns, app.conversation.remembers)


def forget_current(app) -> None:
    cid = _stored_id(app)
    if cid is None:
        app.notify("Nothing to forget: this conversation has nothing in the store.", severity="warning")
        return

    def confirmed(yes: bool | None) -> None:
        if yes:
            app.in_thread(lambda m: m.forget_conversation(cid),
                          lambda n: (app.notify(f"forgot this conversation ({n} turns)"), refresh_after_forget(app)))

    app.push_screen(ConfirmScreen("Forget this whole conversation? It is erased for good."), confirmed)


def export(app, argument: str) -> None:
    from memory.io import export_jsonl

    path = Path(argument or f"memchat-export-{time.strftime('%Y%m%d-%H%M%S')}.jsonl").expanduser()
    profile = app.settings.profile
    app.in_thread(lambda m: export_jsonl(m, path, profile=profile),
                  lambda n: app.notify(f"exported {n} turns of profile {profile} to {path.resolve()}"))


def move_store(app, target: str) -> None:
    """Copy every vector into `target` (no re-embedding) and use it from now on."""
    if refusal := store_move_refusal(app.settings, target):
        app.notify(refusal, severity="error", timeout=10)
        return
    app.notify(f"moving the vectors to {target}…")

    def moved(count: int) -> None:
        app.settings.store = target
        app.query_one(StatusBar).store = target
        app.notify(f"the memory now uses {target} ({count} vectors)")

    options = store_options(app.settings)  # the hosted stores' settings, keys included
    app.in_thread(lambda memory: memory.migrate_store(target, options=options), moved)


def switch_profile(app, name: str) -> None:
    """Close this profile's store and open `name`'s, in a new conversation; the models stay loaded."""
    from memory.profiles import validate_profile
    from memory.errors import BadInput

    try:
        name = validate_profile(name)
    except BadInput as exc:
        app.notify(str(exc), severity="error")
        return
    if not app.may_leave("switching profile"):
        return
    if name == app.settings.profile:
        app.notify(f"already on profile {name}")
        return

    app.ready = False  # what is typed during the switch waits for the new profile's conversation

    def reopen(memory):
        from assistant.common import open_memory

        previous = app.settings.profile
        app.settings.profile = name
        try:
            opened = open_memory(app.settings, embedder=memory.embedder,
                                 on_wait=lambda m: app.call_from_thread(app.notify, m))
        except BaseException:
            app.settings.profile = previous
            app.call_from_thread(resume)
            raise
        memory.close()
        app.memory = opened
        if app.conversation.service is not None:
            app.conversation.service.memory = opened
        # A new conversation, and with it a new session memory, under the store lock and whatever
        # was typed meanwhile: one profile's unsaved turns are never recalled in another.
        app.conversation.reset()
        return name

    def resume() -> None:
        app.ready = app.conversation.service is not None
        app._send_next_pending()

    def shown(_) -> None:
        app.query_one(StatusBar).profile = name
        app.show_new_conversation()
        app.refresh_lists()
        app.notify(f"profile {name}: its memories only")
        resume()

    app.in_thread(reopen, shown)


def set_memory_mode(app, mode: str) -> None:
    """persistent, session or off, from the next message, in a new conversation (a conversation's
    turns live in one place)."""
    if mode not in MEMORY_MODES:
        app.notify(f"/memory takes one of: {', '.join(MEMORY_MODES)}", severity="warning")
        return
    if not app.action_new_conversation(mode):
        return
    app.settings.memory_mode = mode
    app.notify(f"memory {mode}: {app.conversation.remembers}")


def toggle_private(app) -> None:
    """Keep the next message, and its reply, out of the store."""
    conversation = app.conversation
    conversation.private_next = not conversation.private_next
    app.query_one(StatusBar).private = conversation.private_next
    app.notify("the next message is kept out of memory" if conversation.private_next else "the next message is remembered")
