"""Settings, from (highest first) command-line flags, the environment, a `.env` file, defaults.

One place, typed. Every variable is listed in `.env.example`. Each value remembers where it came
from so `memchat doctor` can say so. Keys are held here and nowhere else, and never printed.

The `.env` is memchat's own, in its config dir (~/.config/memchat/.env on Linux), or the file that
`--env-file` names; never one in the current directory, which a cloned repository could fill with
a server of its choosing for every prompt, or another data dir.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from assistant.backends.base import GenerationOptions  # a plain dataclass: no heavy imports

SECRET_FIELDS = ("gemini_api_key", "hf_token", "openai_api_key")
NOT_SETTINGS = ("sources", "store_settings", "env_file")  # Settings fields that no variable sets
MEMORY_MODES = ("persistent", "session", "off")  # what the chat loop keeps: everything, nothing on disk, nothing


def default_env_file() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("memchat", appauthor=False)) / ".env"


def model_choice_file() -> Path:
    """Where `memchat model use NAME` keeps the chosen local model (beside memchat's .env)."""
    return default_env_file().parent / "local-model"


def read_model_choice() -> str | None:
    try:
        return model_choice_file().read_text().strip() or None
    except OSError:
        return None


def default_data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("memchat", appauthor=False))


@dataclass
class Settings:
    data_dir: Path = field(default_factory=default_data_dir)
    profile: str = "default"  # whose memory: each profile is a store of its own (memory/profiles.py)
    model_cache: Path | None = None  # converted local models; None: <data_dir>/models
    store: str | None = None  # None: the store the data dir last used (faiss for a new one)
    embed_provider: str = "local"  # local (sentence-transformers, offline) | gemini | hf | openai
    embed_model: str = "all-MiniLM-L6-v2"  # with a provider and no MEMCHAT_EMBED_MODEL: that provider's default
    embed_dtype: str = "auto"
    local_runtime: str = "auto"  # local model engine: auto (by the CPU) | onnx | torch
    local_weights: str = "auto"  # torch engine's decoding weights: auto (the GGUF's own precision) | int4 | int8 | dense
    local_dtype: str = "auto"  # torch engine's arithmetic: auto (bfloat16 only where native) | float32 | bfloat16
    backend: str = "local"
    model: str | None = None  # None: the backend's default model
    memory_mode: str = "persistent"  # persistent | session (nothing written to disk) | off (stateless)
    k: int = 3  # memories recalled per reply (3 answered best on data/answer-cases.jsonl; docs/answers.md)
    token_budget: int = 2048  # prompt tokens (system + memories + recent turns + message)
    pin_tokens: int = 200  # of those, at most this many for the standing memories (pinned turns); 0: none
    recency_weight: float = 0.0
    # Decoding: the defaults live once, in GenerationOptions.
    temperature: float = GenerationOptions.temperature
    top_p: float = GenerationOptions.top_p
    top_k: int = GenerationOptions.top_k
    max_new_tokens: int = GenerationOptions.max_new_tokens
    seed: int | None = GenerationOptions.seed
    greedy: bool = GenerationOptions.greedy
    stop: tuple[str, ...] = GenerationOptions.stop
    repetition_penalty: float = GenerationOptions.repetition_penalty
    no_repeat_ngram_size: int = GenerationOptions.no_repeat_ngram_size
    gemini_api_key: str | None = None
    gemini_base_url: str | None = None
    hf_token: str | None = None
    hf_base_url: str | None = None
    hf_embed_url: str | None = None  # a Text Embeddings Inference server, for MEMCHAT_EMBED_PROVIDER=hf
    openai_api_key: str | None = None
    openai_base_url: str | None = None  # an OpenAI-compatible server (Ollama, vLLM, LM Studio) for embeddings
    timeout_s: float = 60.0
    tz: str | None = None  # the person's time zone, an IANA name (MEMCHAT_TZ); None: the platform's
    # Each vector store's own settings, {store: {option: value}}, read from the variables that the
    # store registry (memory/stores) names; keys among them are never printed.
    store_settings: dict[str, dict[str, str]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    env_file: Path | None = field(default=None, compare=False)  # the .env that was read, if any

    def __repr__(self) -> str:  # the dataclass's own would print the keys (and tracebacks print reprs)
        shown = {**self.redacted(), "env_file": str(self.env_file) if self.env_file else None}
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in shown.items())})"

    @property
    def memory_dir(self) -> Path:
        """The profile's own directory: its SQLite file, index and lock."""
        from memory.profiles import profile_dir

        return profile_dir(self.data_dir, self.profile)

    @property
    def models_dir(self) -> Path:
        """Converted local models and the embedder's ONNX copy."""
        return self.model_cache or self.data_dir / "models"

    def embedder(self):
        """The embedder the settings name: the local model, or a provider's API."""
        if self.embed_provider == "local":
            from memory.embedding import Embedder

            return Embedder(self.embed_model, dtype=self.embed_dtype, cache_dir=self.models_dir)
        from memory.remote_embedding import remote_embedder

        key, address = {"gemini": (self.gemini_api_key, self.gemini_base_url),
                        "openai": (self.openai_api_key, self.openai_base_url),
                        "hf": (self.hf_token, self.hf_embed_url)}[self.embed_provider]
        return remote_embedder(self.embed_provider, self.embed_model, key, address, self.timeout_s)

    def redacted(self) -> dict[str, object]:
        """All settings as plain values, keys replaced by a mark saying only whether one is set."""
        out = {}
        from memory.stores import STORES

        for f in fields(self):
            if f.name in NOT_SETTINGS:
                continue
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS:
                value = "set (hidden)" if value else "not set"
            elif isinstance(value, str) and "://" in value:
                value = hide_password(value)
            out[f.name] = str(value) if isinstance(value, Path) else value
        for store, options in self.store_settings.items():
            for option, value in options.items():
                if option in STORES[store].secrets:
                    value = "set (hidden)"
                elif "://" in value:
                    value = hide_password(value)
                out[f"{store}.{option}"] = value
        return out


# Environment variable for each setting; the providers' own names for keys.
ENV_NAMES: dict[str, tuple[str, ...]] = {
    "data_dir": ("MEMCHAT_DATA_DIR",),
    "profile": ("MEMCHAT_PROFILE",),
    "model_cache": ("MEMCHAT_MODEL_CACHE",),
    "store": ("MEMCHAT_STORE",),
    "embed_provider": ("MEMCHAT_EMBED_PROVIDER",),
    "embed_model": ("MEMCHAT_EMBED_MODEL",),
    "embed_dtype": ("MEMCHAT_EMBED_DTYPE",),
    "local_runtime": ("MEMCHAT_LOCAL_RUNTIME",),
    "local_weights": ("MEMCHAT_LOCAL_WEIGHTS",),
    "local_dtype": ("MEMCHAT_LOCAL_DTYPE",),
    "backend": ("MEMCHAT_BACKEND",),
    "model": ("MEMCHAT_MODEL",),
    "memory_mode": ("MEMCHAT_MEMORY",),
    "k": ("MEMCHAT_K",),
    "token_budget": ("MEMCHAT_TOKEN_BUDGET",),
    "pin_tokens": ("MEMCHAT_PIN_TOKENS",),
    "recency_weight": ("MEMCHAT_RECENCY_WEIGHT",),
    "temperature": ("MEMCHAT_TEMPERATURE",),
    "top_p": ("MEMCHAT_TOP_P",),
    "top_k": ("MEMCHAT_TOP_K",),
    "max_new_tokens": ("MEMCHAT_MAX_NEW_TOKENS",),
    "seed": ("MEMCHAT_SEED",),
    "greedy": ("MEMCHAT_GREEDY",),
    "stop": ("MEMCHAT_STOP",),
    "repetition_penalty": ("MEMCHAT_REPETITION_PENALTY",),
    "no_repeat_ngram_size": ("MEMCHAT_NO_REPEAT_NGRAM",),
    "gemini_api_key": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "gemini_base_url": ("MEMCHAT_GEMINI_BASE_URL",),
    "hf_token": ("HF_TOKEN",),
    "hf_base_url": ("MEMCHAT_HF_BASE_URL",),
    "hf_embed_url": ("MEMCHAT_HF_EMBED_URL",),
    "openai_api_key": ("OPENAI_API_KEY",),
    "openai_base_url": ("MEMCHAT_OPENAI_BASE_URL",),
    "timeout_s": ("MEMCHAT_TIMEOUT_S",),
    "tz": ("MEMCHAT_TZ",),
}


class ConfigError(Exception):
    exit_code = 2


def hide_password(url: str) -> str:
    import re

    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


# The range each numeric setting may take, from a flag, the environment or .env; the CLI's own
# counts (search -k, list -n, bench sizes…) give theirs where cli.py declares them.
RANGES: dict[str, tuple[int | float, int | float]] = {
    "k": (0, 1000),  # 0: recall nothing
    "token_budget": (64, 1_000_000),  # the largest context windows (Gemini) are a million tokens
    "pin_tokens": (0, 100_000),  # 0: standing memories stay out of the prompt
    "max_new_tokens": (1, 65_536),
    "top_k": (1, 1000),
    "seed": (0, 2**31 - 1),  # what every engine and API accepts
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "repetition_penalty": (1.0, 2.0),  # 1.0: off; below it would reward repeating, past 2 the reply loses its words
    "no_repeat_ngram_size": (0, 100),  # 0: off
    "recency_weight": (0.0, 10.0),
    "timeout_s": (1.0, 3600.0),
}


def range_error(value: int | float, low: int | float, high: int | float) -> str | None:
    """Why `value` is outside low..high (NaN included), or None when it is inside."""
    if low <= value <= high:
        return None
    return f"must be at least {low:,} and at most {high:,}, not {value}"


def _check_ranges(settings: Settings) -> None:
    for name, (low, high) in RANGES.items():
        value = getattr(settings, name)
        problem = range_error(value, low, high) if value is not None else None
        if problem:
            origin, _, var = settings.sources[name].partition(" (")  # "environment (MEMCHAT_K)", "command line"
            label = {"environment": f"{var[:-1]} in the environment",
                     ".env": f"{var[:-1]} in {settings.env_file}"}.get(origin, name)
            raise ConfigError(f"{label} {problem}")


def store_options(settings: "Settings") -> dict:
    """Per-store options for Memory, from the settings: {store: {option: value}}."""
    return {store: dict(options) for store, options in settings.store_settings.items()}


MAX_STOP = 4  # stop sequences a request may carry: OpenAI's limit (Gemini takes 5)


def stop_sequences(raw: str) -> tuple[str, ...]:
    """MEMCHAT_STOP: a JSON list of strings (["\\nUser:", "###"]), or else one sequence as written."""
    import json

    values = json.loads(raw) if raw.lstrip().startswith("[") else [raw]  # bad JSON: a ValueError
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ValueError(raw)
    return tuple(values)


def _check_stop(settings: Settings) -> None:
    settings.stop = tuple(settings.stop)  # --stop, given more than once, is a list
    if len(settings.stop) > MAX_STOP or not all(settings.stop):
        raise ConfigError(f"stop sequences: at most {MAX_STOP}, none empty, not {list(settings.stop)!r} "
                          f"(from {settings.sources.get('stop', 'default')})")


def _bool(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


# How to read each non-string setting from its text form in the environment or .env.
CONVERTERS = {
    "data_dir": lambda raw: Path(raw).expanduser(),
    "model_cache": lambda raw: Path(raw).expanduser(),
    "k": int, "token_budget": int, "pin_tokens": int, "top_k": int, "max_new_tokens": int, "seed": int,
    "recency_weight": float, "temperature": float, "top_p": float, "timeout_s": float,
    "repetition_penalty": float, "no_repeat_ngram_size": int,
    "greedy": _bool, "stop": stop_sequences,
}


def _convert(name: str, raw: str):
    try:
        return CONVERTERS.get(name, str)(raw)
    except ValueError:
        raise ConfigError(f"{ENV_NAMES[name][0]}={raw!r} is not a valid {name}") from None


CONFIG_DIR_ENV = object()  # load_settings' default .env: memchat's own, read if it exists


def load_settings(overrides: dict | None = None, env_file: Path | None | object = CONFIG_DIR_ENV) -> Settings:
    """Build Settings; `overrides` are command-line values (None means 'not given'). `env_file`: by
    default the config dir's .env if there is one; a path the person named (it must exist); None: no .env."""
    from dotenv import dotenv_values

    if env_file is CONFIG_DIR_ENV:
        env_file = default_env_file()
        env_file = env_file if env_file.is_file() else None
    elif env_file is not None:
        env_file = Path(env_file).expanduser().absolute()  # doctor names the file wherever it runs
        if not env_file.is_file():
            raise ConfigError(f"--env-file {env_file}: no such file (leave the option out to read {default_env_file()})")
    dotenv = dotenv_values(env_file) if env_file is not None else {}
    settings = Settings(env_file=env_file)
    for f in fields(Settings):
        if f.name in NOT_SETTINGS:
            continue
        settings.sources[f.name] = "default"
        for var in ENV_NAMES.get(f.name, ()):
            if dotenv.get(var):
                setattr(settings, f.name, _convert(f.name, dotenv[var]))
                settings.sources[f.name] = f".env ({var})"
                break
        for var in ENV_NAMES.get(f.name, ()):
            if os.environ.get(var):
                setattr(settings, f.name, _convert(f.name, os.environ[var]))
                settings.sources[f.name] = f"environment ({var})"
                break
    _load_store_settings(settings, dotenv)
    for name, value in (overrides or {}).items():
        if value is not None:
            setattr(settings, name, Path(value).expanduser() if name == "data_dir" else value)
            settings.sources[name] = "command line"
    if settings.model is None and settings.backend == "local" and (chosen := read_model_choice()):
        # below flags, environment and .env: MEMCHAT_MODEL still overrides `memchat model use`
        settings.model = chosen
        settings.sources["model"] = f"memchat model use ({model_choice_file()})"
    from memory.profiles import validate_profile

    validate_profile(settings.profile)  # a bad name fails before anything is opened
    from memory.remote_embedding import PROVIDERS, default_model

    if settings.embed_provider not in PROVIDERS:
        raise ConfigError(f"embedding provider {settings.embed_provider!r}: use one of {', '.join(PROVIDERS)}")
    if settings.embed_provider != "local" and settings.sources.get("embed_model") == "default":
        settings.embed_model = default_model(settings.embed_provider)  # the local model's name means nothing there
        settings.sources["embed_model"] = f"default for {settings.embed_provider}"
    if settings.memory_mode not in MEMORY_MODES:
        raise ConfigError(f"memory mode {settings.memory_mode!r}: use one of {', '.join(MEMORY_MODES)}")
    _check_ranges(settings)
    _check_stop(settings)
    from assistant.localtime import person_tz

    try:
        person_tz(settings.tz)  # a name that is no zone fails here, before anything is shown
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return settings


def _load_store_settings(settings: Settings, dotenv: dict) -> None:
    """Each store's options from the variables its registry entry names (environment over .env)."""
    from memory.stores import STORES

    for spec in STORES.values():
        for option, var in spec.settings.items():
            for where, values in (("environment", os.environ), (".env", dotenv)):
                if values.get(var):
                    settings.store_settings.setdefault(spec.name, {})[option] = values[var]
                    settings.sources[f"{spec.name}.{option}"] = f"{where} ({var})"
                    break
