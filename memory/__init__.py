"""The remembering side of memchat: record (SQLite), vector stores, recall, import/export.

Never imports `assistant/`.
"""
from memory.errors import MemoryError_, ModelMismatch, BadInput  # noqa: F401
