"""Bounded retries with exponential backoff and jitter, honouring a server's Retry-After."""
from __future__ import annotations

import random
import threading

MAX_ATTEMPTS = 4
BASE_DELAY_S = 0.5
MAX_DELAY_S = 20.0


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt `attempt + 1` (attempt counts from 1)."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_DELAY_S)
    return min(BASE_DELAY_S * 2 ** (attempt - 1), MAX_DELAY_S) * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None  # HTTP-date form: fall back to our own backoff


def wait(seconds: float, cancel: threading.Event) -> bool:
    """Sleep unless cancelled; True if cancelled."""
    return cancel.wait(seconds)
