"""The memchat Textual app.

The screen is drawn at once; torch, the embedder, the vector index and the local model load in a
background thread while the user can already type. A message sent before they are ready is sent
when they are. Every memory and model call runs in a worker thread, one at a time (the store has
one writer), and hands its result back to the UI thread.
"""
from __future__ import annotations

import threading
import time
from typing import Callable

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer

from assistant.config import Settings
from assistant.tui import memory_actions
from assistant.tui.commands import MemchatCommands, help_markdown, run_slash
from assistant.tui.screens.dialogs import HelpScreen
from assistant.tui.screens.memory_browser import MemoryBrowser
from assistant.tui.screens.settings import SettingsScreen
from assistant.tui.widgets.conversation_list import ConversationList
from assistant.tui.widgets.memory_panel import MemoryPanel
from assistant.tui.widgets.prompt_input import PromptInput
from assistant.tui.widgets.status_bar import StatusBar
from assistant.tui.widgets.transcript import Transcript


class MemchatApp(App):
    """The chat app; a reply is generated in a worker thread that posts its chunks as messages."""

    class ReplyChunk(Message):
        def __init__(self, chunk: str) -> None:
            super().__init__()
            self.chunk = chunk

    class ReplyDone(Message):
        def __init__(self, reply=None, error: str | None = None) -> None:
            super().__init__()
            self.reply = reply
            self.error = error

    TITLE = "memchat"
    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {MemchatCommands}
    BINDINGS = [
        Binding("ctrl+c", "stop_or_quit", "stop / quit", priority=True),
        Binding("escape", "stop", "stop reply", show=False),
        Binding("f2", "toggle_memories", "memories"),
        Binding("f3", "memory_browser", "browse"),
        Binding("f4", "settings", "settings"),
        Binding("ctrl+n", "new_conversation", "new"),
        Binding("f6", "private", "private", priority=True),
        Binding("f1", "help", "help"),
        Binding("ctrl+q", "quit", "quit", priority=True),
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.memory = None
        self.service = None
        self.conversation_id: str | None = None
        self.ready = False
        self.generating = False
        self.pending: list[tuple[str, bool]] = []  # (message, private) sent before the models were ready, or mid-reply
        self.private_next = False  # F6 or /private: the next message is kept out of the store
        self.conversation_stored = False  # whether the store holds any turn of the open conversation
        self.cancel = threading.Event()
        self.store_lock = threading.Lock()  # one memory/model call at a time
        self.load_error: str | None = None
        self.quitting = False  # set once quit starts: late replies are stored, not drawn

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield ConversationList()
            with Vertical(id="center"):
                yield Transcript()
                yield PromptInput(id="prompt", placeholder="Message memchat… (Enter sends, Ctrl+J new line, /help)")
            yield MemoryPanel()
        yield StatusBar()
        yield Footer()

    def on_mount(self) -> None:
        status = self.query_one(StatusBar)
        status.backend, status.model = self.settings.backend, self.settings.model or "default"
        status.profile, status.mode = self.settings.profile, self.settings.memory_mode
        status.state = "loading models…"
        self.query_one(MemoryPanel).border_title = "recalled"
        self.query_one(Transcript).show_turns([])
        self.query_one(PromptInput).focus()
        self.load_everything()

    # -- loading -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load")
    def load_everything(self) -> None:
        from assistant.backends import BackendError, create_backend
        from assistant.chat import service_from_settings
        from assistant.common import open_memory
        from memory.errors import MemoryError_

        started = time.perf_counter()
        try:
            with self.store_lock:
                if self.memory is None:
                    self.memory = open_memory(self.settings, on_wait=lambda m: self.call_from_thread(self.notify, m))
                    self.memory.embedder.warm_up()
                backend = create_backend(self.settings)
                if hasattr(backend, "load"):
                    backend.load()
                self.service = service_from_settings(self.memory, backend, self.settings)
                if self.quitting:  # the app closed while this held the lock: the store is ours to close
                    self.memory.close()
                    return
            self.call_from_thread(self._models_ready, time.perf_counter() - started)
        except (MemoryError_, BackendError) as exc:
            self.call_from_thread(self._load_failed, str(exc))

    def _models_ready(self, seconds: float) -> None:
        self.ready = True
        self.load_error = None
        status = self.query_one(StatusBar)
        status.state = "ready"
        status.backend, status.model = self.service.backend.name, self.service.backend.model
        status.store = self.memory.store_name
        self.refresh_lists()
        self.log(f"models ready in {seconds:.1f}s")
        self._send_next_pending()

    def _load_failed(self, message: str) -> None:
        self.load_error = message
        self.query_one(StatusBar).state = "not ready"
        self.notify(message, title="cannot start the backend", severity="error", timeout=15)
        if self.memory is not None:
            self.refresh_lists()

    # -- running work off the UI thread --------------------------------------------------------
    def in_thread(self, job: Callable, then: Callable | None = None) -> None:
        """Run job(memory) in a worker thread under the store lock; then(result) on the UI thread."""
        if self.memory is None:
            self.notify("the memory store is still loading", severity="warning")
            return

        def run() -> None:
            from assistant.backends import BackendError
            from memory.errors import MemoryError_

            try:
                with self.store_lock:
                    result = job(self.memory)
            except (MemoryError_, BackendError, OSError) as exc:
                self.call_from_thread(self.notify, str(exc), severity="error")
                return
            if then is not None:
                self.call_from_thread(then, result)

        self.run_worker(run, thread=True, group="store")

    def refresh_lists(self) -> None:
        def gather(memory):
            return memory.conversations(), memory.stats()["turns"]

        def show(result) -> None:
            conversations, count = result
            self.query_one(ConversationList).show(conversations, self.conversation_id)
            self.query_one(StatusBar).memories = count

        self.in_thread(gather, show)

    def refresh_after_forget(self) -> None:
        if self.conversation_id is not None:
            cid = self.conversation_id
            self.in_thread(lambda m: m.turns(cid) if m.has_conversation(cid) else None, self._show_after_forget)
        self.refresh_lists()

    def _show_after_forget(self, turns) -> None:
        if turns is None:
            self.conversation_id = None
            turns = []
        self.query_one(Transcript).show_turns(turns)

    # -- sending -------------------------------------------------------------------------------
    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if text.strip().startswith("/"):
            self.run_slash(text.strip())
            return
        self.query_one(Transcript).add_user(text)
        private, self.private_next = self.private_next, False
        self.query_one(StatusBar).private = False
        if not self.ready or self.generating:
            self.pending.append((text, private))
            if not self.ready:
                self.notify("Models are loading; your message is sent as soon as they are ready.", timeout=4)
            return
        self._start_reply(text, private)

    def _send_next_pending(self) -> None:
        if self.pending and self.ready and not self.generating:
            self._start_reply(*self.pending.pop(0))

    def _start_reply(self, text: str, private: bool = False) -> None:
        self.generating = True
        self.cancel = threading.Event()
        self.query_one(StatusBar).state = "thinking…"
        self.query_one(Transcript).start_reply()
        self.generate(text, self.cancel, private)

    @work(thread=True, group="chat")
    def generate(self, text: str, cancel: threading.Event, private: bool = False) -> None:
        """Posting messages is thread-safe and does not wait for the screen, so decoding never
        waits on drawing; messages arrive in order, so the reply ends after its last chunk."""
        from memory.errors import MemoryError_

        try:
            with self.store_lock:
                reply = self.service.ask(text, self.conversation_id, cancel=cancel, store=not private,
                                         on_chunk=lambda chunk: self.post_message(self.ReplyChunk(chunk)))
        except MemoryError_ as exc:
            self.post_message(self.ReplyDone(error=str(exc)))
            return
        self.post_message(self.ReplyDone(reply))

    async def on_memchat_app_reply_chunk(self, message: ReplyChunk) -> None:
        if not self.quitting:
            await self.query_one(Transcript).append_reply(message.chunk)

    async def on_memchat_app_reply_done(self, message: ReplyDone) -> None:
        self.generating = False
        if self.quitting:  # the reply was stored by the worker; the screen is going away
            return
        reply = message.reply
        status = self.query_one(StatusBar)
        status.state = "ready"
        if reply is None:  # the store failed, before or after the model
            await self.query_one(Transcript).finish_reply("failed", None, message.error)
            self.notify(message.error, severity="error", timeout=10)
            return
        self.conversation_id = reply.conversation_id
        self.conversation_stored = self.conversation_stored or reply.stored
        await self.query_one(Transcript).finish_reply(reply.status, reply.reply_turn_id, reply.error)
        self.query_one(MemoryPanel).show_hits(reply.memories)
        status.tokens_per_s = reply.timings.get("tokens_per_s", 0.0)
        if reply.error:
            self.notify(reply.error, title=f"{reply.backend} failed", severity="error", timeout=10)
        for warning in reply.warnings:
            self.notify(warning, severity="warning")
        self.refresh_lists()
        self._send_next_pending()

    # -- conversations -------------------------------------------------------------------------
    def on_conversation_list_switch(self, message: ConversationList.Switch) -> None:
        self.open_conversation(message.conversation_id)

    def on_memory_panel_open(self, message: MemoryPanel.Open) -> None:
        if message.turn_id is not None and message.turn_id < 0:  # kept in this process only (session, private)
            self.notify("That memory is earlier in this conversation; it is not in the store.")
            return
        self.open_conversation(message.conversation_id, message.turn_id)

    def open_conversation(self, conversation_id: str, turn_id: int | None = None) -> None:
        if self.generating:
            self.notify("A reply is streaming; stop it (Escape) or wait before switching.", severity="warning")
            return

        def show(turns) -> None:
            self.conversation_id, self.conversation_stored = conversation_id, True
            transcript = self.query_one(Transcript)
            transcript.show_turns(turns)
            if turn_id is not None:
                self.call_after_refresh(transcript.scroll_to_turn, turn_id)
            self.refresh_lists()

        self.in_thread(lambda m: m.turns(conversation_id), show)

    def action_new_conversation(self) -> None:
        if self.generating:
            self.notify("A reply is streaming; stop it first.", severity="warning")
            return
        self.conversation_id, self.conversation_stored = None, False
        self.query_one(Transcript).show_turns([])
        self.query_one(MemoryPanel).show_hits([])
        self.query_one(PromptInput).focus()

    # -- slash commands (assistant/tui/commands.py) -------------------------------------------
    def run_slash(self, line: str) -> None:
        run_slash(self, line)

    # -- settings ------------------------------------------------------------------------------
    def action_settings(self) -> None:
        store = self.memory.store_name if self.memory is not None else None
        self.push_screen(SettingsScreen(self.settings, store), lambda values: values and self.apply_settings(values))

    def apply_settings(self, values: dict) -> None:
        from assistant.backends import BACKENDS, GenerationOptions

        if values.get("backend") not in (None, *BACKENDS):
            self.notify(f"unknown backend {values['backend']!r}; use one of: {', '.join(BACKENDS)}", severity="error")
            return
        if "store" in values:
            memory_actions.move_store(self, values.pop("store"))
        backend_changed = any(values.get(k, getattr(self.settings, k)) != getattr(self.settings, k) for k in ("backend", "model"))
        for name, value in values.items():
            setattr(self.settings, name, value)
        if self.generating:
            self.notify("Settings apply from the next reply.")
        if backend_changed or self.service is None:
            self.ready = False
            self.query_one(StatusBar).state = "loading models…"
            self.load_everything()
            return
        self.service.k = self.settings.k
        self.service.token_budget = self.settings.token_budget
        self.service.options = GenerationOptions.from_settings(self.settings)
        self.notify("settings applied")

    # -- actions -------------------------------------------------------------------------------
    def action_private(self) -> None:
        memory_actions.toggle_private(self)

    def action_toggle_memories(self) -> None:
        self.query_one(MemoryPanel).toggle_class("hidden")

    def action_memory_browser(self) -> None:
        self.push_screen(MemoryBrowser())

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_markdown()))

    def action_stop(self) -> None:
        if self.generating:
            self.cancel.set()
            self.query_one(StatusBar).state = "stopping…"

    async def action_stop_or_quit(self) -> None:
        if self.generating:
            self.action_stop()
        else:
            await self.action_quit()

    async def action_quit(self) -> None:
        """Stop a reply in flight, let it record what streamed, close the store, exit."""
        self.quitting = True
        self.cancel.set()
        self.pending.clear()
        for worker in list(self.workers):
            if worker.group in ("chat", "store"):
                try:
                    await worker.wait()
                except Exception:  # a failed worker already reported itself
                    pass
        self.exit()

    def on_unmount(self) -> None:
        # Never wait for the lock on the UI thread: a first model conversion holds it for ~30 s.
        # Whoever holds it closes the store when done (load_everything checks `quitting`).
        self.quitting = True
        if self.memory is not None and self.store_lock.acquire(blocking=False):
            try:
                self.memory.close()
            finally:
                self.store_lock.release()


def run_app(settings: Settings) -> int:
    MemchatApp(settings).run()
    return 0
