"""The `memchat mcp` command's flags (assistant/mcp_server.py runs it). Light: the CLI builds every
parser at each start, and the MCP SDK loads only when the command runs."""
from __future__ import annotations

import argparse

MCP_MODES = ("persistent", "session")  # what the server keeps: on disk, or for its own life only


def add_mcp_parser(commands, common: argparse.ArgumentParser) -> None:
    p = commands.add_parser("mcp", parents=[common], help="serve the memory to MCP clients (Claude Desktop, Cursor, ...)",
                            description="Serve this profile's memory as an MCP server: remember, recall, search, show, "
                                        "forget, list_conversations and stats. Over stdio (what a client starts; "
                                        "`memchat doctor` prints the config entry), or Streamable HTTP on loopback "
                                        "with a bearer token. The CLI and the TUI keep working on the same data dir.")
    p.add_argument("--http", metavar="HOST:PORT", help="serve Streamable HTTP at http://HOST:PORT/mcp instead of stdio; "
                                                      "requires the bearer token (made and shown on first use)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow --http on a non-loopback address (plain HTTP: put a TLS proxy in front)")
    p.add_argument("--read-only", action="store_true", help="offer no remember or forget tool")
    p.add_argument("--memory", dest="memory_mode", choices=MCP_MODES,
                   help="persistent: remembered on disk (default, or $MEMCHAT_MEMORY); session: remembered for this "
                        "server's life only. A session server still opens the profile's store on disk (it "
                        "recalls and shows the memories stored there) but writes nothing of the session to "
                        "it, and forgets nothing")
    p.add_argument("--rotate-token", action="store_true",
                   help="replace the HTTP bearer token, print the new one, and exit")
