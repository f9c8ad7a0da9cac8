"""The memchat Textual app.

The screen is drawn at once; torch, the embedder, the vector index and the local model load in a
background thread while the user can already type. A message sent before they are ready is sent
when they are. Every memory and model call runs in a worker thread, one at a time (the store has
one writer), and hands its result back to the UI thread.

The conversation's state lives in one `Conversation` (assistant/conversation.py), which `memchat
ask` drives too; the App draws it and delegates. Workers run behind one error boundary (`in_thread`,
`Conversation.send`); past it, `_handle_exception` ends the app with one line, never Textual's
traceback with every frame's local variables (the message, the prompt, a key).
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Footer

from assistant.config import Settings
from assistant.conversation import Conversation
from assistant.failures import one_line, unexpected
from assistant.tui import memory_actions, pin_actions, settings_actions
from assistant.tui.commands import MemchatCommands, help_markdown, run_slash
from assistant.tui.screens.dialogs import HelpScreen
from assistant.tui.screens.memory_browser import MemoryBrowser
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
        def __init__(self, reply) -> None:
            super().__init__()
            self.reply = reply

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
        Binding("f7", "keep_proposal", "keep for every chat", show=False, priority=True),
        Binding("f1", "help", "help"),
        Binding("ctrl+q", "quit", "quit", priority=True),
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.memory = None
        self.conversation = Conversation(None, settings.memory_mode)  # answered once the models load
        self.ready = False
        self.cancel = threading.Event()
        self.store_lock = threading.Lock()  # one memory/model call at a time
        self.load_error: str | None = None
        self.quitting = False  # set once quit starts: late replies are stored, not drawn
        self.close_owed = False  # unmounted while a worker held the store lock: that worker closes it

    @property
    def generating(self) -> bool:
        return self.conversation.replying

    def _handle_exception(self, error: Exception) -> None:
        """Textual's last resort for an exception nothing caught: it would print a traceback with
        every frame's local variables. One line instead; the turns already stored stay stored."""
        from textual.worker import WorkerFailed

        cause = error.error if isinstance(error, WorkerFailed) else error
        if self._exception is None:  # Textual's test pilot raises it again for the test to see
            self._exception = error
            self._exception_event.set()
        self.exit(return_code=1, message=f"memchat: error: {unexpected(cause)}")

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
        self.query_one(Transcript).show_turns([], self.conversation.remembers)
        self.query_one(PromptInput).focus()
        self.load_everything()
        self.set_interval(memory_actions.DEFERRED_EVERY_S, lambda: memory_actions.send_deferred_deletes(self))

    # -- loading -------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load")
    def load_everything(self) -> None:
        from assistant.backends import create_backend
        from assistant.chat import service_from_settings
        from assistant.common import open_memory

        started = time.perf_counter()
        try:
            with self.store_lock:
                if self.memory is None:
                    self.memory = open_memory(self.settings, on_wait=lambda m: self.call_from_thread(self.notify, m))
                    self.memory.embedder.warm_up()
                backend = create_backend(self.settings)
                if hasattr(backend, "load"):
                    backend.load()
                # The same conversation, answered by the new service: a backend switch keeps it whole.
                self.conversation.use(service_from_settings(self.memory, backend, self.settings))
                if self.quitting:  # the app closed while this held the lock: the store is ours to close
                    self.conversation.store_unsent(self.memory)
                    self.memory.close()
                    return
            self.call_from_thread(self._models_ready, time.perf_counter() - started)
        except Exception as exc:  # the error boundary: one line (a bug's never shows its locals)
            self.call_from_thread(self._load_failed, one_line(exc))

    def _models_ready(self, seconds: float) -> None:
        if self.closing_down():  # loaded as the app closed: nothing left to show it in
            return
        self.ready = True
        self.load_error = None
        status = self.query_one(StatusBar)
        status.state = "ready"
        status.backend, status.model = self.conversation.service.backend.name, self.conversation.service.backend.model
        status.store = self.memory.store_name
        self.refresh_lists()
        self.log(f"models ready in {seconds:.1f}s")
        self._send_next_pending()

    def _load_failed(self, message: str) -> None:
        self.load_error = message
        if not self.closing_down():
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
            try:  # the error boundary of every store job: one line, and the app stays up
                with self.store_lock:
                    result = job(self.memory)
            except Exception as exc:
                self.call_from_thread(self.notify, one_line(exc), severity="error")
                return
            if then is not None:
                self.call_from_thread(self._show_result, then, result)

        self.run_worker(run, thread=True, group="store")

    def closing_down(self) -> bool:
        """Whether the app is quitting or its widgets are being torn down (a test's exit included)."""
        return self.quitting or not self.is_running or bool(self._exit_renderables) or self.return_code is not None

    def _show_result(self, then: Callable, result) -> None:
        try:
            then(result)
        except NoMatches:  # the app closed while the job ran: its widgets are gone, nothing to draw
            if not self.closing_down():
                raise

    def refresh_lists(self) -> None:
        def gather(memory):
            return memory.conversations(), memory.stats()["turns"]

        def show(result) -> None:
            conversations, count = result
            self.query_one(ConversationList).show(conversations, self.conversation.id)
            self.query_one(StatusBar).memories = count

        self.in_thread(gather, show)

    # -- sending -------------------------------------------------------------------------------
    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        text = message.text
        if text.strip().startswith("/"):
            self.run_slash(text.strip())
            return
        self.query_one(Transcript).add_user(text)
        self.conversation.submit(text)  # takes the private flag with it
        self.query_one(StatusBar).private = False
        if not self.ready and not self.generating:
            self.notify("Models are loading; your message is sent as soon as they are ready.", timeout=4)
        self._send_next_pending()

    def _send_next_pending(self) -> None:
        if not self.ready or self.generating or self.quitting:
            return
        if (outgoing := self.conversation.take_next()) is None:
            return
        self.conversation.replying = True
        self.cancel = threading.Event()
        self.query_one(StatusBar).state = "thinking…"
        self.query_one(Transcript).start_reply()
        self.generate(outgoing, self.cancel)

    @work(thread=True, group="chat")
    def generate(self, outgoing, cancel: threading.Event) -> None:
        """Posting messages is thread-safe and does not wait for the screen, so decoding never
        waits on drawing; messages arrive in order, so the reply ends after its last chunk.
        Conversation.send is the error boundary: whatever fails comes back as a failed reply."""
        with self.store_lock:
            reply = self.conversation.send(outgoing, cancel=cancel,
                                           on_chunk=lambda chunk: self.post_message(self.ReplyChunk(chunk)))
        self.post_message(self.ReplyDone(reply))
        with self.store_lock:
            self.conversation.settle()  # the reply's vector, once the reply is on its way to the screen
            if self.close_owed:  # the app was unmounted while this held the lock: the store is ours to close
                self.memory.close()

    async def on_memchat_app_reply_chunk(self, message: ReplyChunk) -> None:
        if not self.closing_down():
            await self.query_one(Transcript).append_reply(message.chunk)

    async def on_memchat_app_reply_done(self, message: ReplyDone) -> None:
        if self.closing_down():  # the reply was stored by the worker; the screen is going away
            self.conversation.replying = False
            return
        reply = message.reply
        status = self.query_one(StatusBar)
        status.state = "ready"
        await self.query_one(Transcript).finish_reply("cut" if reply.cut else reply.status, reply.reply_turn_id,
                                                      reply.error)
        self.query_one(MemoryPanel).show_hits(reply.memories, reply.window, reply.superseded, len(reply.pins))
        status.tokens_per_s = reply.timings.get("tokens_per_s", 0.0)
        if reply.error:
            self.notify(reply.error, title=f"{reply.backend} failed", severity="error", timeout=10)
        for warning in reply.warnings:
            self.notify(warning, severity="warning")
        pin_actions.propose(self, reply)  # a standing memory proposed, never made unasked
        self.conversation.replying = False  # only now: the reply, its panel and its notices are shown
        self.refresh_lists()
        self._send_next_pending()  # a failed reply never stops the messages typed after it

    # -- conversations -------------------------------------------------------------------------
    def on_conversation_list_switch(self, message: ConversationList.Switch) -> None:
        self.open_conversation(message.conversation_id)

    def on_memory_panel_open(self, message: MemoryPanel.Open) -> None:
        if message.turn_id is not None and message.turn_id < 0:  # kept in this process only (session, private)
            self.notify("That memory is earlier in this conversation; it is not in the store.")
            return
        self.open_conversation(message.conversation_id, message.turn_id)

    def open_conversation(self, conversation_id: str, turn_id: int | None = None) -> None:
        if not self.may_leave("switching"):
            return

        def show(turns) -> None:
            if not self.may_leave("switching"):
                return
            self.conversation.open(conversation_id)
            transcript = self.query_one(Transcript)
            transcript.show_turns(turns, self.conversation.remembers)
            if turn_id is not None:
                self.call_after_refresh(transcript.scroll_to_turn, turn_id)
            self.refresh_lists()

        self.in_thread(lambda m: m.turns(conversation_id), show)

    def may_leave(self, doing: str) -> bool:
        """Whether the open conversation may be left now; if not, says why."""
        if reason := self.conversation.busy(doing):
            self.notify(reason, severity="warning")
        return reason is None

    def action_new_conversation(self, mode: str | None = None) -> bool:
        """A new conversation (Ctrl+N, /new, /memory); False if it must wait."""
        if not self.may_leave("starting a new conversation"):
            return False
        self.conversation.start_new(mode)
        self.show_new_conversation()
        return True

    def show_new_conversation(self) -> None:
        status = self.query_one(StatusBar)
        status.mode, status.private = self.conversation.mode, False
        transcript = self.query_one(Transcript)
        transcript.show_turns([], self.conversation.remembers)
        for outgoing in self.conversation.queue:  # typed meanwhile: sent in the new conversation
            transcript.add_user(outgoing.text)
        self.query_one(MemoryPanel).show_hits([])
        self.query_one(PromptInput).focus()

    # -- slash commands (assistant/tui/commands.py) -------------------------------------------
    def run_slash(self, line: str) -> None:
        run_slash(self, line)

    # -- settings (assistant/tui/settings_actions.py) ------------------------------------------
    def action_settings(self) -> None:
        settings_actions.open_settings(self)

    def apply_settings(self, values: dict) -> None:
        settings_actions.apply_settings(self, values)

    # -- actions -------------------------------------------------------------------------------
    def action_private(self) -> None:
        memory_actions.toggle_private(self)

    def action_keep_proposal(self) -> None:
        pin_actions.keep_proposal(self)

    def action_toggle_memories(self) -> None:
        self.query_one(MemoryPanel).toggle_class("hidden")

    def action_memory_browser(self) -> None:
        self.push_screen(MemoryBrowser())

    def action_help(self) -> None:
        self.push_screen(HelpScreen(help_markdown(self.conversation.remembers)))

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
        """Stop a reply in flight, let it record what streamed, store the messages typed but not
        sent yet (the models may still be loading: that worker stores them), close the store, exit."""
        self.quitting = True
        self.cancel.set()
        unsent = bool(self.conversation.queue)
        if unsent:
            self.notify("storing the messages not sent yet…")
        for worker in list(self.workers):
            if worker.group in ("chat", "store", *(("load",) if unsent else ())):
                try:
                    await worker.wait()
                except Exception:  # a failed worker already reported itself
                    pass
        if self.conversation.queue and self.memory is not None:
            failure = await asyncio.to_thread(self._store_unsent)
            if failure:  # the app is closing: said where the person will see it, after the screen goes
                self.exit(return_code=1, message=f"memchat: error: messages not sent were not stored: {failure}")
                return
        self.exit()

    def _store_unsent(self) -> str | None:
        with self.store_lock:
            try:
                self.conversation.store_unsent(self.memory)
            except Exception as exc:
                return one_line(exc)
        return None

    def on_unmount(self) -> None:
        # Never wait for the lock on the UI thread (a first model conversion holds it ~30 s): its
        # holder closes the store when done (load_everything checks `quitting`, a reply `close_owed`).
        self.quitting = True
        if self.memory is not None and not self.store_lock.acquire(blocking=False):
            self.close_owed = True
        elif self.memory is not None:
            self.memory.close()  # releases its own lock and engine whatever happens
            self.store_lock.release()


def run_app(settings: Settings) -> int:
    app = MemchatApp(settings)
    app.run()
    return app.return_code or 0  # 1 after an error that ended the app (said in one line)
