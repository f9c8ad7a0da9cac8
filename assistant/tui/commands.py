"""Command palette entries (Ctrl+P): everything the keys and slash commands do, findable by name."""
from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Provider

from assistant.backends import BACKENDS


class MemchatCommands(Provider):
    def _commands(self):
        app = self.app
        commands = [
            ("New conversation", app.action_new_conversation, "start a fresh conversation"),
            ("Memory browser", app.action_memory_browser, "search, view and forget memories"),
            ("Settings", app.action_settings, "backend, model, k, budget, decoding"),
            ("Toggle memory panel", app.action_toggle_memories, "show or hide recalled memories"),
            ("Export memories", partial(app.run_slash, "/export"), "write all memories to a JSONL file"),
            ("Forget this conversation", partial(app.run_slash, "/forget"), "erase it, after confirmation"),
            ("Help", app.action_help, "keys and slash commands"),
        ]
        commands += [(f"Backend: {name}", partial(app.run_slash, f"/backend {name}"), f"switch to the {name} backend")
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
