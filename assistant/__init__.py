"""The conversation side of memchat: configuration, the chat loop, model backends, CLI and TUI."""
