"""One conversation's state, in one place, for every face (`memchat ask`, the TUI): which
conversation it is, its memory mode, the turns it keeps in this process only, whether the next
message is private, the messages waiting to be sent, and the chat service (backend and options)
that answers it.

`send` is the error boundary every reply passes: whatever fails, the caller gets a Reply with one
line to show (never a traceback, whose local variables hold the prompt and the memories in it), the
user's message stays stored where it was stored, and the next queued message can go.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Callable

from assistant.chat import ChatService, Reply, check_mode
from assistant.failures import one_line
from memory.errors import BadInput
from memory.forgetting import title_from
from memory.session import SessionMemory


@dataclass(frozen=True)
class Outgoing:
    """A message typed, waiting for its reply: `private` keeps it and its reply out of the store."""

    text: str
    private: bool = False


class Conversation:
    """`service` may come later (the TUI takes messages while its models load); nothing is sent before."""

    def __init__(self, service: ChatService | None, mode: str = "persistent", conversation_id: str | None = None):
        self.service = service
        self.mode = check_mode(mode)
        self.id = conversation_id  # None until its first turn is kept (and always in mode off)
        self._session: SessionMemory | None = None  # turns kept in this process only, made when first needed
        self.private_next = False  # F6, /private, `ask --no-store`: the next message is kept out of the store
        self.queue: deque[Outgoing] = deque()  # typed while the models load or a reply streams
        self.replying = False  # a reply is on its way (set and cleared by the face, on its own thread)
        # The last message sent: its stored turn (None when kept out of the store), whether it was
        # private, and whether it read as a lasting instruction (a standing memory proposed, not made).
        self.last_turn_id: int | None = None
        self.last_private = False
        self.proposal: int | None = None

    @property
    def session(self) -> SessionMemory:
        if self._session is None:
            self._session = SessionMemory(self.service.memory.embedder)
        return self._session

    # -- what the person typed -------------------------------------------------------------------
    def submit(self, text: str) -> Outgoing:
        """Queue a message, taking the private flag with it (it applies to one message)."""
        outgoing = Outgoing(text, self.private_next)
        self.private_next = False
        self.queue.append(outgoing)
        return outgoing

    def take_next(self) -> Outgoing | None:
        return self.queue.popleft() if self.queue else None

    def send(self, outgoing: Outgoing, *, use_memory: bool = True, on_chunk: Callable[[str], None] | None = None,
             cancel=None) -> Reply:
        """One reply, behind the error boundary (see the module's docstring)."""
        try:
            reply = self.service.ask(outgoing.text, self.id, mode=self.mode, session=self.session,
                                     use_memory=use_memory, store=not outgoing.private, on_chunk=on_chunk,
                                     cancel=cancel)
        except Exception as exc:  # the store failed before the reply, or a bug: one line, the app goes on
            return Reply(conversation_id=self.id, answer="", status="failed", memories=[],
                         backend=self.service.backend.name, model=self.service.backend.model, usage={},
                         timings={}, error=one_line(exc), error_code=getattr(exc, "exit_code", None) or 1,
                         mode=self.mode, stored=False,
                         warnings=self.service.memory.take_notices())
        if self.mode != "off":
            self.id = reply.conversation_id
        self.last_turn_id, self.last_private, self.proposal = reply.user_turn_id, outgoing.private, reply.proposal
        return reply

    def settle(self) -> None:
        """After the reply is shown: embed what the turn committed without its vector (the reply);
        a failure is a notice, and the turn waits to be embedded later."""
        self.service.memory.settle_deferred()

    def store_unsent(self, memory) -> int:
        """At quit: keep the messages still waiting (never answered) as turns of `memory`, so nothing
        typed is lost, marked unsent; private ones and those of a session or stateless conversation
        stay unwritten. Returns how many were stored."""
        kept = 0
        while self.queue:
            outgoing = self.queue.popleft()
            if self.mode != "persistent" or outgoing.private:
                continue
            turn = memory.remember(outgoing.text, "user", self.id, meta={"unsent": True},
                                   conversation_title=title_from(outgoing.text))
            self.id, kept = turn.conversation_id, kept + 1
        return kept

    # -- which conversation ------------------------------------------------------------------------
    def start_new(self, mode: str | None = None) -> None:
        """A new conversation (Ctrl+N, /memory, a profile switch): the old one's turns kept in this
        process only are dropped with it, never carried into the next."""
        self._check_may_leave("starting a new conversation")
        self.mode = check_mode(mode or self.mode)
        self.reset()

    def reset(self) -> None:
        """Leave this conversation for a new one now, keeping the mode and anything queued (a profile
        switch does this under the store lock: what was typed meanwhile goes to the new profile)."""
        self.id = None
        self._session = None
        self.private_next = False
        self.last_turn_id, self.last_private, self.proposal = None, False, None

    def open(self, conversation_id: str) -> None:
        """Continue a stored conversation, in this conversation's memory mode."""
        self._check_may_leave("switching conversations")
        self.id = conversation_id
        self._session = None
        self.last_turn_id, self.last_private, self.proposal = None, False, None

    def use(self, service: ChatService) -> None:
        """Answer with another backend or options from the next message on; the conversation, its
        session turns and its queue stay (a /backend switch in session mode wiped them before)."""
        self.service = service

    def busy(self, doing: str) -> str | None:
        """Why the conversation cannot be left now (a reply or queued messages are due), or None."""
        if self.replying:
            return f"a reply is streaming; stop it (Escape) or wait before {doing}"
        if self.queue:
            return f"{len(self.queue)} message(s) are still waiting to be sent; wait for them before {doing}"
        return None

    def _check_may_leave(self, doing: str) -> None:
        if reason := self.busy(doing):
            raise BadInput(reason)

    @property
    def remembers(self) -> str:
        """What this conversation keeps, in words for the person."""
        return {"persistent": "Everything you write, and every reply, is stored and remembered",
                "session": "Incognito: this conversation is recalled from while it lasts, and nothing of it is "
                           "written to disk",
                "off": "Each message is answered alone: nothing is recalled or stored"}[self.mode]
