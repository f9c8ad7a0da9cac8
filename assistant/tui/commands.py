"""Every command of the chat app in one place: the slash commands typed in the prompt, the keys,
and the command palette (Ctrl+P). `run_slash` dispatches from SLASH_COMMANDS, the palette lists it,
and `help_markdown` (the /help and F1 page) is written from it, so the three never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

from textual.command import DiscoveryHit, Hit, Provider

from assistant.backends import BACKENDS
from assistant.config import MEMORY_MODES
from assistant.tui import memory_actions, pin_actions


@dataclass(frozen=True)
class SlashCommand:
    name: str  # as typed: "/new"
    argument: str  # shown in help: "TITLE", "[FILE]"; "" for none
    help: str
    run: Callable[[object, str], None]  # (app, argument)

    @property
    def needs_argument(self) -> bool:
        return bool(self.argument) and not self.argument.startswith("[")


def _search(app, query: str) -> None:
    from assistant.tui.screens.memory_browser import MemoryBrowser

    app.push_screen(MemoryBrowser(query))


def _k(app, value: str) -> None:
    if not value.isdigit():
        app.notify(f"/k takes a whole number of memories, not {value!r}", severity="warning")
        return
    app.apply_settings({"k": int(value)})


SLASH_COMMANDS: tuple[SlashCommand, ...] = (
    SlashCommand("/new", "", "start a new conversation", lambda app, _: app.action_new_conversation()),
    SlashCommand("/rename", "TITLE", "rename this conversation", memory_actions.rename_current),
    SlashCommand("/backend", "|".join(BACKENDS), "switch model backend",
                 lambda app, name: app.apply_settings({"backend": name, "model": None})),
    SlashCommand("/model", "NAME", "switch model", lambda app, name: app.apply_settings({"model": name})),
    SlashCommand("/k", "N", "memories recalled per reply", _k),
    SlashCommand("/search", "[QUERY]", "open the memory browser, with a search", _search),
    SlashCommand("/forget", "", "forget this whole conversation (asks first)", lambda app, _: memory_actions.forget_current(app)),
    SlashCommand("/delete", "", "same as /forget", lambda app, _: memory_actions.forget_current(app)),
    SlashCommand("/export", "[FILE]", "write this profile's memories to a JSONL file", memory_actions.export),
    SlashCommand("/profile", "NAME", "switch to profile NAME's memories (a new conversation)", memory_actions.switch_profile),
    SlashCommand("/memory", "|".join(MEMORY_MODES), "persistent: store everything; session: incognito, nothing "
                 "written to disk; off: answer each message alone (a new conversation)", memory_actions.set_memory_mode),
    SlashCommand("/private", "", "keep the next message and its reply out of memory (F6)",
                 lambda app, _: memory_actions.toggle_private(app)),
    SlashCommand("/pin", "[TEXT]", "keep your last message (or TEXT) for every chat: a standing memory",
                 pin_actions.pin_command),
    SlashCommand("/pins", "", "the standing memories, with unpin (U)", pin_actions.show_pins),
    SlashCommand("/help", "", "keys and commands (F1)", lambda app, _: app.action_help()),
)
BY_NAME = {command.name: command for command in SLASH_COMMANDS}

KEYS = (
    ("Enter", "send"),
    ("Ctrl+J (Shift+Enter where the terminal reports it)", "new line"),
    ("Up / Down (first / last line)", "earlier inputs"),
    ("Escape or Ctrl+C while a reply streams", "stop it (what streamed is kept)"),
    ("F2", "show or hide the memory panel"),
    ("F3", "memory browser: search, view, forget"),
    ("F4", "settings"),
    ("Ctrl+N", "new conversation"),
    ("F6", "keep the next message out of memory (private)"),
    ("F7", "keep the proposed message for every chat (a standing memory)"),
    ("P in the memory panel or browser", "pin the selected memory for every chat"),
    ("Ctrl+P", "command palette"),
    ("F1", "this page"),
    ("Ctrl+Q (or Ctrl+C when idle)", "quit"),
)


def run_slash(app, line: str) -> None:
    """Run a typed slash command, or say why not."""
    name, _, argument = line.strip().partition(" ")
    argument = argument.strip()
    command = BY_NAME.get(name)
    if command is None:
        app.notify(f"unknown command {line.strip()!r}; /help lists them", severity="warning")
    elif command.needs_argument and not argument:
        app.notify(f"{command.name} needs {command.argument}: {command.help}", severity="warning")
    else:
        command.run(app, argument)


def help_markdown(remembers: str) -> str:
    """`remembers`: what the open conversation keeps (Conversation.remembers), which its memory mode decides."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["# memchat", "",
             f"{remembers}. Replies recall related memories from **all** your stored conversations (unless",
             "the memory mode is off); the panel on the right shows which.", "",
             "## Keys", "| key | does |", "|---|---|"]
    lines += [f"| {cell(key)} | {cell(does)} |" for key, does in KEYS]
    lines += ["", "## Slash commands", "| command | does |", "|---|---|"]
    lines += [f"| `{cell((c.name + ' ' + c.argument).strip())}` | {cell(c.help)} |" for c in SLASH_COMMANDS]
    return "\n".join(lines) + "\n"


class MemchatCommands(Provider):
    """The command palette: the app's actions and every slash command that can run without typing more."""

    def _commands(self):
        app = self.app
        commands = [
            ("Memory browser", app.action_memory_browser, "search, view and forget memories"),
            ("Settings", app.action_settings, "backend, model, k, budget, decoding"),
            ("Toggle memory panel", app.action_toggle_memories, "show or hide recalled memories"),
        ]
        commands += [(f"{c.name} — {c.help}", partial(run_slash, app, c.name), c.help)
                     for c in SLASH_COMMANDS if not c.needs_argument]
        commands += [(f"Backend: {name}", partial(run_slash, app, f"/backend {name}"), f"switch to the {name} backend")
                     for name in BACKENDS]
        return commands

    async def discover(self):
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str):
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
