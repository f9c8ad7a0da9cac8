"""Turning provider failures into one-line BackendErrors, the same way for every remote backend."""
from __future__ import annotations

import threading
from typing import Callable, Iterator

from assistant.backends.base import BackendError, redact
from assistant.backends.retry import MAX_ATTEMPTS, backoff_delay, parse_retry_after, wait

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


def transport_kind(exc: BaseException) -> str | None:
    """'timeout' or 'network' for httpx/httpx2/requests transport failures, by class name, since
    the SDKs use different HTTP stacks (google-genai and huggingface_hub both ship httpx2 here)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & {"TimeoutException", "ReadTimeout", "ConnectTimeout", "Timeout", "InferenceTimeoutError", "TimeoutError"}:
        return "timeout"
    if names & {"ConnectError", "NetworkError", "TransportError", "ConnectionError", "RemoteProtocolError"}:
        return "network"
    return None


def status_error(provider: str, status: int, detail: str, key_hint: str, secrets: tuple) -> BackendError:
    detail = " ".join(redact(detail, *secrets).split())  # a body's newlines would break the one line
    detail = detail.removeprefix(f"Error code: {status} - ")[:200]  # the openai SDK's prefix: the status is said
    if status in (401, 403) or "API key not valid" in detail or "API_KEY_INVALID" in detail:
        return BackendError(f"{provider} rejected the key ({status}); check {key_hint}", "auth")
    if status == 404:
        return BackendError(f"{provider}: model not found (404); check the model name with --model", "not_found")
    if status == 429:
        return BackendError(f"{provider} rate limit or quota exceeded (429) after retries; wait and try again, "
                            "or check your plan's quota", "rate_limit")
    if status >= 500:
        return BackendError(f"{provider} server error ({status}) after retries; try again later", "error")
    return BackendError(f"{provider} refused the request ({status}): {detail}", "error")


def transport_error(provider: str, kind: str, timeout_s: float) -> BackendError:
    if kind == "timeout":
        return BackendError(f"{provider} did not answer within {timeout_s:g} s; try again or raise MEMCHAT_TIMEOUT_S",
                            "timeout")
    return BackendError(f"cannot reach {provider}: network down or endpoint wrong; check your connection "
                        "(or the base URL setting)", "network")


def retrying_stream(attempt: Callable[[], Iterator[str]], status_of: Callable[[Exception], tuple[int, dict] | None],
                    provider: str, key_hint: str, secrets: tuple, timeout_s: float,
                    cancel: threading.Event) -> Iterator[str]:
    """Run `attempt()` (one request, yielding text) with bounded, jittered retries honouring
    Retry-After. A retry happens only before the first chunk, so no text is ever repeated.
    `status_of(exc)` gives (HTTP status, headers) for the SDK's HTTP errors, None for others."""
    for number in range(1, MAX_ATTEMPTS + 1):
        started = False
        try:
            for text in attempt():
                started = True
                yield text
            return
        except BackendError:
            raise
        except Exception as exc:
            status = status_of(exc)
            if status is not None:
                code, headers = status
                if code in RETRYABLE_STATUS and not started and number < MAX_ATTEMPTS:
                    if wait(backoff_delay(number, parse_retry_after(headers.get("retry-after"))), cancel):
                        return
                    continue
                raise status_error(provider, code, str(exc), key_hint, secrets) from None
            kind = transport_kind(exc)
            if kind is not None:
                raise transport_error(provider, kind, timeout_s) from None
            raise BackendError(f"{provider} sent a response memchat could not read: "
                               f"{redact(str(exc), *secrets)[:200]}", "bad_stream") from None
