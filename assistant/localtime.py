"""The person's time zone and how a stored time is shown to them.

Times are stored as UTC epoch seconds; every time the CLI and the TUI show is local, with its
offset, so it is never ambiguous ("2026-11-22 14:05 +01:00"). JSON output and exports keep UTC ISO.
The zone is MEMCHAT_TZ (an IANA name) when set, else the platform's: tzlocal names the platform's
zone, so a date across a daylight-saving change gets that date's offset, not today's.
"""
from __future__ import annotations

from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def person_tz(name: str | None = None) -> tzinfo:
    """The zone `name` names (MEMCHAT_TZ's value), or the platform's when it is None or empty. A
    name that is no zone is a ValueError; load_settings turns it into a one-line ConfigError."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"MEMCHAT_TZ={name!r} is not a time zone: use an IANA name such as "
                             "Europe/Berlin or America/Sao_Paulo, or leave it unset for the system's") from None
    from tzlocal import get_localzone

    try:
        return get_localzone()
    except Exception:  # an unreadable platform setting: the offset it gives now still beats UTC
        return datetime.now().astimezone().tzinfo


def shown_time(epoch: float, tz: tzinfo) -> str:
    """A stored time as the person reads it: local, to the minute, with its offset."""
    moment = datetime.fromtimestamp(epoch, tz)
    offset = moment.strftime("%z")
    return f"{moment:%Y-%m-%d %H:%M} {offset[:3]}:{offset[3:]}"
