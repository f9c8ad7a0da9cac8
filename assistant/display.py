"""Showing stored or generated text on a terminal: control characters (escape sequences included)
are shown as \\xNN, never sent to the terminal to interpret."""
from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
