"""Turning provider failures into one-line BackendErrors, the same way for every remote backend."""
from __future__ import annotations

from assistant.backends.base import BackendError, redact

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
    detail = redact(detail, *secrets)[:200]
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
