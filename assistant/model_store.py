"""Downloaded local models on disk: where each lives, its install record, pull and remove.

A pulled model is `<model cache>/downloads/<name>/<file>.gguf` beside `memchat-model.json`, the
record of what was pulled (repository, file, revision, size, sha256 and what it was checked
against). The converted copies the local backend makes of it (safetensors, and the ONNX Runtime
build) live in the model cache too, named by `converted_dir`; `remove` deletes all of them.

The download is huggingface_hub's `hf_hub_download`: it honours HF_ENDPOINT, HF_HUB_OFFLINE and
HF_TOKEN, and resumes a transfer cut mid-file with a Range request (within the pull; a pull that
is stopped starts again). memchat draws the progress bar (assistant/progress.py). Before it, one
HEAD request gives the file's size, to refuse a download the disk cannot hold, and the Hub's ETag,
which for a file stored with Git LFS (every GGUF) is its SHA-256: the file is checked against the
catalogue's checksum where one is known, and against that one always.
"""
from __future__ import annotations

import errno
import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.backends.onnx_engine import built_path
from assistant.progress import ProgressBar
from assistant.model_catalogue import CatalogueModel

RECORD = "memchat-model.json"
STORED_DTYPE = "bfloat16"  # the converted copy on disk; the torch engine casts it when it loads
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ModelStoreError(Exception):
    """An expected failure of pull/use/remove, as one line saying what to do next."""

    exit_code = 1


def downloads_dir(models_dir: Path) -> Path:
    return Path(models_dir) / "downloads"


def converted_dir(source: Path, cache_dir: Path) -> Path:
    """Where the local backend keeps a GGUF's safetensors conversion (its ONNX build sits beside it)."""
    stat = source.stat()
    tag = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{STORED_DTYPE}".encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{source.stem}-{tag}"


@dataclass(frozen=True)
class Installed:
    name: str
    path: Path  # the GGUF file
    record: dict


def installed(models_dir: Path) -> dict[str, Installed]:
    """Every pulled model with a complete download, by name."""
    out = {}
    root = downloads_dir(models_dir)
    for record_path in sorted(root.glob(f"*/{RECORD}")) if root.is_dir() else ():
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            continue  # a record cut by a crash: the model counts as not pulled, and pull redoes it
        path = record_path.parent / record.get("filename", "")
        if path.is_file():
            out[record_path.parent.name] = Installed(record_path.parent.name, path, record)
    return out


def installed_model(models_dir: Path, name: str) -> Installed | None:
    everything = installed(models_dir)
    return everything.get(name) or everything.get(name.lower())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _hub_errors(exc: Exception, entry: CatalogueModel) -> ModelStoreError | None:
    """The one line for a failure of huggingface_hub's, or None when it is not one of those."""
    from huggingface_hub import errors

    where = f"{entry.repo}/{entry.filename}"
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return ModelStoreError(f"cannot download {entry.name}: HF_HUB_OFFLINE is set; unset it to pull from the Hub")
    if isinstance(exc, errors.GatedRepoError):
        return ModelStoreError(f"{entry.repo} is gated: accept its licence on the Hub and set HF_TOKEN, then pull again")
    if isinstance(exc, (errors.RepositoryNotFoundError, errors.RevisionNotFoundError, errors.RemoteEntryNotFoundError)):
        return ModelStoreError(f"{where} (revision {entry.revision}) is not on the Hub; check the name")
    if isinstance(exc, errors.HfHubHTTPError):
        status = getattr(getattr(exc, "response", None), "status_code", "an error")
        return ModelStoreError(f"the Hub answered {status} for {where}; try again later")
    if isinstance(exc, errors.LocalEntryNotFoundError) or type(exc).__module__.startswith(("httpx", "httpcore")):
        return ModelStoreError(f"cannot reach the Hub to download {entry.name} (no network?); "
                               "connect and run the pull again, or set MEMCHAT_MODEL to a GGUF file you have")
    return None


def _free_bytes(directory: Path) -> int:
    for path in (directory, *directory.parents):
        if path.exists():
            return shutil.disk_usage(path).free
    return 0


def _bar_class(bar, phase: str):
    """A tqdm stand-in for hf_hub_download that draws memchat's own bar (assistant/progress.py): tqdm's
    own, asked to draw only on a terminal, drew nothing on one here."""
    class Bar:
        def __init__(self, *args, total=None, initial=0, **kwargs):
            self.total, self.n = total, initial

        def update(self, n=1):
            self.n += n  # negative when a server ignored a Range and the transfer restarted
            bar(phase, self.n >> 20, (self.total or self.n) >> 20)

        def close(self):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False
    return Bar


def pull(entry: CatalogueModel, models_dir: Path, token: str | None = None) -> Installed:
    """Download `entry` into the model cache, check it, record it; an installed one is returned as is."""
    done = installed_model(models_dir, entry.name)
    if done is not None:
        return done
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

    from memory.runtime.private_files import ensure_private_dir

    target = downloads_dir(models_dir) / entry.name
    try:
        meta = get_hf_file_metadata(hf_hub_url(entry.repo, entry.filename, revision=entry.revision), token=token)
        size = meta.size or entry.size_bytes
        if entry.size_bytes is not None and meta.size is not None and meta.size != entry.size_bytes:
            raise ModelStoreError(f"the Hub's {entry.filename} is {meta.size:,} bytes, the catalogue says "
                                  f"{entry.size_bytes:,}: not downloaded (the file changed upstream?)")
        free = _free_bytes(target)
        if size and free < size + (64 << 20):
            raise ModelStoreError(f"not enough disk space for {entry.name}: it needs {size / 1e6:,.0f} MB, "
                                  f"{free / 1e6:,.0f} MB are free where the model cache is ({models_dir}); "
                                  "free some or set MEMCHAT_MODEL_CACHE to a larger disk")
        ensure_private_dir(target)
        with ProgressBar() as bar:
            path = Path(hf_hub_download(entry.repo, entry.filename, revision=entry.revision, local_dir=target,
                                        token=token, tqdm_class=_bar_class(bar, f"downloading {entry.name} (MB)")))
    except ModelStoreError:
        raise
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            shutil.rmtree(target, ignore_errors=True)
            raise ModelStoreError(f"the disk filled up while downloading {entry.name}; the partial file was "
                                  "removed: free some space or set MEMCHAT_MODEL_CACHE to a larger disk") from None
        mapped = _hub_errors(exc, entry)
        if mapped is None:
            raise ModelStoreError(f"the download of {entry.name} failed: {str(exc).splitlines()[0][:200]}; "
                                  "run the pull again") from None
        raise mapped from None
    except Exception as exc:
        mapped = _hub_errors(exc, entry)
        if mapped is None:
            raise
        raise mapped from None
    return _check_and_record(entry, path, target, hub_sha256=meta.etag if _SHA256.fullmatch(meta.etag or "") else None,
                             commit=meta.commit_hash)


def _check_and_record(entry: CatalogueModel, path: Path, target: Path, hub_sha256: str | None,
                      commit: str | None) -> Installed:
    sha = file_sha256(path)
    for expected, whose in ((entry.sha256, "the catalogue's"), (hub_sha256, "the Hub's")):
        if expected is not None and sha != expected:
            shutil.rmtree(target, ignore_errors=True)
            raise ModelStoreError(f"{entry.filename} does not match {whose} SHA-256 (got {sha[:12]}…, expected "
                                  f"{expected[:12]}…); the download was removed: run the pull again")
    checked = [whose for expected, whose in ((entry.sha256, "catalogue"), (hub_sha256, "hub")) if expected]
    record = {**entry.as_dict(), "size_bytes": path.stat().st_size, "sha256": sha, "checked_against": checked,
              "commit": commit, "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = target / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(target / RECORD)  # the record last: without it the model is not pulled
    return Installed(entry.name, path, record)


def remove(models_dir: Path, name: str) -> int:
    """Delete a pulled model and its converted copies; the bytes freed."""
    model = installed_model(models_dir, name)
    directory = downloads_dir(models_dir) / (model.name if model else name)
    # a name, never a path: `remove ..` emptied the model cache, `remove /some/dir` deleted that dir
    if name in ("", ".", "..") or Path(name).name != name or not directory.is_dir():
        raise ModelStoreError(f"{name!r} is not downloaded (`memchat model list` shows what is)")
    paths = [directory]
    if model is not None:
        converted = converted_dir(model.path, models_dir)
        paths += [converted, built_path(converted)]
    freed = sum(_size(p) for p in paths)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    return freed


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0
