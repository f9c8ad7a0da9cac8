"""The bearer token `memchat mcp --http` requires: made on first use, kept 0600 in memchat's config
dir beside its .env, printed once when made, replaced by `memchat mcp --rotate-token`.

The HTTP server opens on no address without it: anything on the machine can reach a loopback port
(a browser page included), and the memory behind it holds a person's conversations.
"""
from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from memory.errors import BadInput

TOKEN_NAME = "mcp-token"
TOKEN_BYTES = 32  # 256 bits, url-safe base64: 43 characters


def token_path() -> Path:
    """Beside the .env memchat reads by default (assistant/config.py default_env_file)."""
    from assistant.config import default_env_file

    return default_env_file().parent / TOKEN_NAME


def load_or_create(path: Path | None = None) -> tuple[str, bool]:
    """The token and whether it was made just now (then the caller prints it, once)."""
    path = path or token_path()
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return _write_new(path), True
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read the MCP token in {path} ({type(exc).__name__}); "
                       "`memchat mcp --rotate-token` writes a new one") from None
    if len(token) < 32:  # emptied or cut short by hand: never serve with a guessable token
        raise BadInput(f"the MCP token in {path} is too short; `memchat mcp --rotate-token` writes a new one")
    _keep_private(path)
    return token, False


def rotate(path: Path | None = None) -> str:
    """A new token in place of the old (clients with the old one get 401 from the next request)."""
    return _write_new(path or token_path())


def matches(header: bytes | None, token: str) -> bool:
    """Whether an Authorization header carries `token`, compared in constant time."""
    expected = b"Bearer " + token.encode("ascii")
    return hmac.compare_digest(header or b"", expected)


class TokenCheck:
    """Checks a request's header against the token file as it is now: `--rotate-token` takes effect
    on a running server from its next request, and a token file removed refuses every request."""

    def __init__(self, token: str, path: Path | None = None):
        self.path = path or token_path()
        self._token, self._seen = token, self._stamp()

    def __call__(self, header: bytes | None) -> bool:
        stamp = self._stamp()
        if stamp != self._seen:
            try:
                self._token, self._seen = _read_existing(self.path), stamp
            except BadInput:
                return False  # unreadable or gone: closed, never open
        return matches(header, self._token)

    def _stamp(self):
        try:
            info = self.path.stat()
        except OSError:
            return None
        return info.st_mtime_ns, info.st_size, info.st_ino


def _read_existing(path: Path) -> str:
    """The token in `path`; a missing file is an error here (a running server never makes one)."""
    if not path.exists():
        raise BadInput(f"the MCP token file {path} is gone")
    token, _ = load_or_create(path)
    return token


def _write_new(path: Path) -> str:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    fd = _open_partial(partial)
    try:
        try:
            os.write(fd, (token + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        partial.unlink(missing_ok=True)  # no half-written token left beside the real one
        raise
    os.replace(partial, path)  # a reader sees the old token or the new, never half of one
    return token


def _open_partial(partial: Path) -> int:
    """A new file only we can read (0600 from its first byte): never one that is already there, never
    through a link planted at its name. A partial left by a process that died (same pid) is removed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        return os.open(partial, flags, 0o600)
    except FileExistsError:
        partial.unlink()  # removes a link itself, not what it points to
        return os.open(partial, flags, 0o600)


def _keep_private(path: Path) -> None:
    """A token file others can read is made private again (a copy or an editor may have widened it)."""
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
