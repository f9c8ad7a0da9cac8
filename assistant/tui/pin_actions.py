"""Standing memories in the chat app: `/pin` (the person's last message), `/pin TEXT`, `/pins` (the
list, with unpin), the proposal after a message that reads as a lasting instruction (F7 keeps it;
ignoring it drops it), and the pin key of the recalled-memories panel and the memory browser.
Nothing is pinned without the person's word; every store call runs in the app's worker thread."""
from __future__ import annotations

PROPOSAL_KEY = "F7"


def propose(app, reply) -> None:
    """After a reply: say so when its message read as a lasting instruction or preference."""
    if reply.proposal is not None:
        app.notify(f"That reads like a standing instruction or preference. Keep it for every chat? Press "
                   f"{PROPOSAL_KEY} (or type /pin); ignore this to drop it.", title="standing memory?", timeout=15)


def keep_proposal(app) -> None:
    """F7: pin the message the last proposal named; the proposal is used up either way."""
    turn_id, app.conversation.proposal = app.conversation.proposal, None
    if turn_id is None:
        app.notify("No proposal to keep. /pin pins your last message; /pins lists the standing memories.",
                   severity="warning")
        return
    pin_turn(app, turn_id)


def pin_turn(app, turn_id: int) -> None:
    """Pin a stored turn (the panel's and the browser's key, F7, /pin)."""
    if turn_id < 0:
        app.notify("That message is kept in this process only (incognito or private): it cannot be pinned.",
                   severity="warning")
        return
    app.in_thread(lambda memory: memory.pin(turn_id), _pinned(app))


def _pinned(app):
    def shown(turn) -> None:
        app.notify(f"Pinned #{turn.id}: it goes into every prompt from now on (/pins lists or unpins).")
    return shown


def pin_command(app, text: str) -> None:
    """`/pin`: the person's last message; `/pin TEXT`: TEXT stored as a message of theirs, then pinned."""
    conversation = app.conversation
    if conversation.mode != "persistent":
        app.notify(f"Memory is {conversation.mode} in this conversation: nothing of it is written, so nothing "
                   "can be pinned (/memory persistent first).", severity="warning")
        return
    if text:
        from memory.forgetting import title_from

        app.in_thread(lambda memory: memory.pin(memory.remember(text, "user", conversation_title=title_from(text)).id),
                      lambda turn: (_pinned(app)(turn), app.refresh_lists()))
        return
    if conversation.last_private:
        app.notify("Your last message was kept out of memory (private): there is nothing stored to pin.",
                   severity="warning")
        return
    if conversation.last_turn_id is not None:
        pin_turn(app, conversation.last_turn_id)
        return
    cid = conversation.id
    if cid is None:
        app.notify("Nothing said in this conversation yet; /pin TEXT keeps TEXT for every chat.", severity="warning")
        return

    def latest_of_theirs(memory):  # a conversation opened from the list: its latest message of theirs
        from memory.errors import NotFound

        said = next((t for t in memory.turns(cid, limit=50, newest_first=True) if t.role == "user"), None)
        if said is None:
            raise NotFound("no message of yours in this conversation to pin")
        return memory.pin(said.id)

    app.in_thread(latest_of_theirs, _pinned(app))


def show_pins(app, _argument: str = "") -> None:
    from assistant.tui.screens.pins import PinsScreen

    app.push_screen(PinsScreen())
