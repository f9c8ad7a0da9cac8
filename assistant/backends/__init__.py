"""Model backends: adding one is one module and one line in BACKENDS."""
from __future__ import annotations

from assistant.backends.base import Backend, BackendError, GenerationOptions, StreamState  # noqa: F401

BACKENDS = ("local", "gemini", "hf")


def create_backend(settings, name: str | None = None, model: str | None = None) -> Backend:
    name = name or settings.backend
    model = model if model is not None else settings.model
    if name == "local":
        from assistant.backends.local import LocalBackend

        return LocalBackend(model, settings.models_dir, settings.local_weights, settings.local_dtype,
                            settings.local_runtime)
    if name == "gemini":
        from assistant.backends.gemini import GeminiBackend

        return GeminiBackend(model, settings.gemini_api_key, settings.gemini_base_url, settings.timeout_s)
    if name == "hf":
        from assistant.backends.hf import HFBackend

        return HFBackend(model, settings.hf_token, settings.hf_base_url, settings.timeout_s)
    raise BackendError(f"unknown backend {name!r}; use one of: {', '.join(BACKENDS)}", "not_found")
