"""The Textual app: a thin shell over the same ChatService that `memchat ask` uses."""
