"""`memchat ask`: one turn through the chat service, streamed to stdout."""
from __future__ import annotations

import sys
import threading

from assistant.backends import create_backend
from assistant.chat import service_from_settings
from assistant.common import open_memory, print_json, read_text_arg
from assistant.conversation import Conversation, Outgoing
from assistant.display import visible
from assistant.localtime import person_tz, shown_time
from assistant.progress import ProgressBar
from memory.errors import NotFound
from memory.turn import validate_text


def run_ask(args, settings) -> int:
    text = validate_text(read_text_arg(args.text))
    backend = create_backend(settings)  # a missing key fails here, before anything is stored
    if hasattr(backend, "start_loading"):  # the local model loads while the store opens and recalls
        backend.start_loading()
    with ProgressBar() as bar, open_memory(settings, bar) as memory:
        conversation_id = args.cid
        if args.continue_:
            conversation_id = memory.latest_conversation()
            if conversation_id is None:
                raise NotFound("no conversation to continue yet; ask without -c to start one")
        elif conversation_id is not None and not memory.has_conversation(conversation_id):
            raise NotFound(f"no conversation {conversation_id!r}; `memchat memory list` shows them")
        conversation = Conversation(service_from_settings(memory, backend, settings), settings.memory_mode,
                                    conversation_id)
        outgoing = Outgoing(text, private=args.no_store)
        streaming = not args.json

        def show(chunk: str) -> None:
            sys.stdout.write(visible(chunk))
            sys.stdout.flush()

        cancel, done = threading.Event(), threading.Event()
        outcome: dict = {}

        def turn() -> None:
            try:  # Conversation.send is the error boundary: what fails comes back as a failed reply
                outcome["reply"] = conversation.send(outgoing, use_memory=not args.no_memory,
                                                     on_chunk=show if streaming else None, cancel=cancel)
            finally:
                done.set()

        # The turn runs beside the main thread, so Ctrl+C (delivered to the main thread) stops the
        # reply and the chat loop still records it, marked stopped, with what streamed. (An Event,
        # not Thread.join: a join interrupted by Ctrl+C may later report a live thread as finished.)
        threading.Thread(target=turn, name="memchat-ask", daemon=True).start()
        while not done.is_set():
            try:
                done.wait(0.1)
            except KeyboardInterrupt:
                cancel.set()
        reply = outcome["reply"]
        if streaming and reply.answer and not reply.answer.endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
        if args.show_memories and not args.json:
            tz = person_tz(settings.tz)
            if reply.window:  # the time the message named, which recall preferred
                print(f"[window: {reply.window.label(tz)} ({reply.window.phrase!r})]", file=sys.stderr)
            for hit in reply.pins:  # the standing memories: in every prompt, whatever the question
                print(f"[standing #{hit.turn.id} pinned {shown_time(hit.turn.pinned_at, tz)}] "
                      f"{visible(hit.turn.text)[:200]}", file=sys.stderr)
            by_id = {hit.turn.id: hit for hit in reply.memories}
            for hit in reply.memories:
                newer = by_id.get(reply.superseded.get(hit.turn.id))  # a newer statement replaced it
                replaced = f" superseded by #{newer.turn.id} of {shown_time(newer.turn.created_at, tz)}" if newer else ""
                print(f"[memory #{hit.turn.id} {shown_time(hit.turn.created_at, tz)} {hit.turn.role} "
                      f"score {hit.score:.3f}{replaced}] {visible(hit.turn.text)[:200]}", file=sys.stderr)
        for warning in reply.warnings:
            print(f"memchat: note: {warning}", file=sys.stderr)
        if reply.proposal is not None and not args.json:  # a proposal only: nothing is pinned unasked
            print(f"memchat: keep this for every chat? `memchat memory pin {reply.proposal}` makes it a standing "
                  "memory", file=sys.stderr)
        if args.timings and not args.json:
            print("memchat: timings: " + ", ".join(f"{k} {v}" for k, v in reply.timings.items()), file=sys.stderr)
        if args.json:
            print_json(reply.to_json())
        if reply.error:
            print(f"memchat: error: {reply.error}", file=sys.stderr)
        elif reply.status == "stopped":
            print("memchat: stopped; the reply so far is kept in the conversation (marked stopped)", file=sys.stderr)
        return reply.exit_code
