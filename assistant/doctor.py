"""`memchat doctor`: what memchat will use, where each value came from, and what is ready."""
from __future__ import annotations

from pathlib import Path

from assistant.backends import BACKENDS, BackendError, create_backend
from assistant.config import Settings, default_env_file, hide_password
from memory.errors import MemoryError_


def backend_readiness(settings: Settings) -> dict[str, str]:
    """'ready …' or 'not ready: <why>' per backend, without loading a model or sending a request
    (but GET /models to a server on this machine, to say whether one answers there)."""
    status = {}
    for name in BACKENDS:
        try:
            backend = create_backend(settings, name, model=settings.model if name == settings.backend else None)
            where = getattr(backend, "source", None) or getattr(backend, "_base_url", None) or "provider default endpoint"
            where = hide_password(str(where))  # a base URL may carry a password
            how = f"; {backend.describe()}" if hasattr(backend, "describe") else ""
            if name == "openai" and _silent_loopback(getattr(backend, "_base_url", None)):
                status[name] = (f"configured, but nothing answers at {where}: start the server there, or "
                                "change MEMCHAT_OPENAI_BASE_URL")
                continue
            status[name] = f"ready ({backend.model}; {where}{how}){_repetition_note(backend)}"
        except BackendError as exc:
            status[name] = f"not ready: {exc}"
    return status


def _silent_loopback(url: str | None) -> bool:
    """A server on this machine (Ollama, vLLM, llama.cpp) that does not answer: probed, as it is
    quick and sends nothing but GET /models; a remote endpoint is never contacted by doctor."""
    from assistant.local_servers import is_loopback, probe

    return is_loopback(url) and probe(url)[0] is None


def _repetition_note(backend) -> str:
    """Which repetition knobs (--repetition-penalty, --no-repeat-ngram) the backend cannot honour."""
    ignored = [o for o in ("repetition_penalty", "no_repeat_ngram_size") if o not in backend.supported_options]
    return f"; ignores {' and '.join(ignored)}" if ignored else ""


def store_readiness(settings: Settings) -> dict[str, str]:
    """Per registered store: what it is and whether its settings are there; nothing is contacted."""
    from memory.stores import STORES

    lines = {}
    for spec in STORES.values():
        options = settings.store_settings.get(spec.name, {})
        if not spec.configured(options):
            lines[spec.name] = f"not configured: set {spec.settings[spec.requires]} ({spec.about})"
        else:
            given = ", ".join(spec.settings[o] for o in options) or "no settings needed"
            lines[spec.name] = f"set up ({spec.about}; {given})"
    return lines


def _env_file_line(settings: Settings) -> str:
    if settings.env_file is None:
        line = f"no .env read (memchat looks for {default_env_file()}; --env-file PATH reads another)"
    else:
        how = "" if settings.env_file == default_env_file() else " (--env-file)"
        line = f".env read: {settings.env_file}{how}"
    here = Path(".env")
    if here.is_file() and (settings.env_file is None or not here.samefile(settings.env_file)):
        line += "\n  ./.env is not read (a directory's .env could redirect memchat); --env-file .env reads it"
    return line


def run_doctor(settings: Settings) -> int:
    print("memchat configuration (flags > environment > .env > defaults)")
    print(f"  {_env_file_line(settings)}")
    for name, value in settings.redacted().items():
        print(f"  {name:>15} = {value!s:<40} [{settings.sources.get(name, 'default')}]")
    print(f"\ndata dir: {settings.data_dir}  (profile {settings.profile}: {settings.memory_dir})")
    current_store = settings.store
    try:
        from assistant.common import open_memory

        with open_memory(settings) as memory:
            stats = memory.stats()
        current_store = stats["store"]
        print(f"store: {stats['turns']} turns in {stats['conversations']} conversations, "
              f"{stats['indexed']} vectors indexed ({stats['store']}, {stats['index_kind']}), "
              f"embedding model {stats['embed_model']}")
    except MemoryError_ as exc:
        print(f"store: not usable: {exc}")
    from memory.runtime import cpu

    print(f"\ncpu: {cpu.describe()['cpu']} ({', '.join(cpu.extensions()) or 'no AVX2'}); "
          f"bfloat16 {'native' if cpu.native_bf16() else 'emulated'}")
    print("\nvector stores (--store, MEMCHAT_STORE; `memchat memory migrate --to NAME` moves the vectors):")
    for name, line in store_readiness(settings).items():
        marker = "*" if name == current_store else " "
        print(f" {marker} {name:>8}: {line}")
    from assistant.model_commands import doctor_lines

    print("\nlocal model (memchat model list | pull | use | remove):")
    print("\n".join(doctor_lines(settings)))
    print("\nbackends:")
    for name, line in backend_readiness(settings).items():
        marker = "*" if name == settings.backend else " "
        print(f" {marker} {name:>7}: {line}")
    from assistant.local_servers import local_server_lines

    print("\nlocal OpenAI-compatible servers (their usual ports; --backend openai talks to them):")
    print("\n".join(local_server_lines(settings)))
    from assistant.mcp_server import client_config

    print("\nMCP clients: this machine's entry for Claude Desktop's and Cursor's mcpServers (the README has "
          "Codex CLI's, VS Code's and the HTTP ones):")
    print(client_config(settings))
    return 0
