"""Model backends: adding one is one module and one entry in BACKENDS.

Everything that offers a choice of backend (the CLI's --backend, the TUI's /backend and settings,
`memchat doctor`, `memchat eval`) reads this table; no other list of backend names exists. A
backend's module is imported only when it is created, so reading the table is free.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from assistant.backends.base import Backend, BackendError, GenerationOptions, StreamState  # noqa: F401


@dataclass(frozen=True)
class BackendSpec:
    name: str
    module: str  # created as module.cls(model, *(the settings named below, in order))
    cls: str
    settings: tuple[str, ...]  # Settings attributes the constructor takes after the model


BACKENDS: dict[str, BackendSpec] = {spec.name: spec for spec in (
    BackendSpec("local", "assistant.backends.local", "LocalBackend",
                ("models_dir", "local_weights", "local_dtype", "local_runtime")),
    BackendSpec("gemini", "assistant.backends.gemini", "GeminiBackend",
                ("gemini_api_key", "gemini_base_url", "timeout_s")),
    BackendSpec("hf", "assistant.backends.hf", "HFBackend", ("hf_token", "hf_base_url", "timeout_s")),
    BackendSpec("openai", "assistant.backends.openai_chat", "OpenAIBackend",
                ("openai_api_key", "openai_base_url", "timeout_s")),
)}


def create_backend(settings, name: str | None = None, model: str | None = None) -> Backend:
    name = name or settings.backend
    model = model if model is not None else settings.model
    spec = BACKENDS.get(name)
    if spec is None:
        raise BackendError(f"unknown backend {name!r}; use one of: {', '.join(BACKENDS)}", "not_found")
    cls = getattr(importlib.import_module(spec.module), spec.cls)
    return cls(model, *(getattr(settings, option) for option in spec.settings))
