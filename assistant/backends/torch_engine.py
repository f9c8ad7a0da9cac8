"""The local model on torch (transformers): the engine where ONNX Runtime GenAI is not installed, or by choice.

Weights are packed for decoding at the precision the GGUF shipped them in (4-bit blocks, 8-bit
output layer; assistant/backends/cpu_decoding.py). The compute dtype is float32 unless the CPU
has native bfloat16 (memory/runtime/cpu.py): emulated bf16 made a 289-token prefill 4x slower on
an AVX2 CPU. Generation runs on memchat's one torch thread (memory/runtime/torch_thread.py) and
streams tokens to the caller's thread through TextIteratorStreamer.
"""
from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Iterator

from assistant.backends.base import BackendError, GenerationOptions, StreamState
from assistant.backends.turn_end import with_turn_ends
from memory.runtime import cpu, torch_thread
from memory.runtime.free_cores import CoreShare

WEIGHTS = ("auto", "int4", "int8", "dense", "bf16")  # MEMCHAT_LOCAL_WEIGHTS; bf16: the old name of dense
DTYPES = ("auto", "float32", "bfloat16")  # MEMCHAT_LOCAL_DTYPE; auto: bfloat16 only where it is native
SHIPPED = "shipped-precision.json"  # in a converted model: the GGUF's weight types, for weights=auto


def check_settings(weights: str, dtype: str) -> None:
    """MEMCHAT_LOCAL_WEIGHTS and MEMCHAT_LOCAL_DTYPE, refused when wrong whichever engine runs."""
    if weights not in WEIGHTS:
        raise BackendError(f"local weights {weights!r}: use one of {', '.join(WEIGHTS)}", "not_found")
    if dtype not in DTYPES:
        raise BackendError(f"local dtype {dtype!r}: use one of {', '.join(DTYPES)}", "not_found")


class TorchEngine:
    def __init__(self, directory: Path, weights: str = "auto", dtype: str = "auto"):
        check_settings(weights, dtype)
        self.directory = directory
        self.weights = "dense" if weights == "bf16" else weights
        self.dtype = cpu.float_dtype(dtype)
        self._model = None
        self._tokenizer = None
        # One thread per free CPU, set at load: with one of two cores kept busy, two threads decoded
        # 0.5 tokens/s (each step waits for the thread that shares the busy core; docs/benchmarks.md).
        self._share: CoreShare | None = None
        # Memoized per engine (the prompt recounts the same recent turns every turn). A class-level
        # lru_cache held every engine, and so every model, alive after a switch.
        self.count_tokens = functools.lru_cache(maxsize=4096)(self._count_tokens)

    def describe(self) -> str:
        bits = self._bits(self.directory)
        packed = f"int{bits[0]} blocks, int{bits[1]} output layer" if bits[0] else "dense weights"
        return f"torch {self.dtype}, {packed}"

    def load(self) -> None:
        """Call on the torch thread."""
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from assistant.backends.cpu_decoding import quantize_for_decoding, use_decode_attention

        self._share = CoreShare(most=torch_thread.default_threads())
        torch.set_num_threads(self._share.threads(wait=True))
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        directory = self.directory
        if (directory / "tokenizer.json").is_file():  # AutoTokenizer spent 2-4 s finding this class
            from transformers import PreTrainedTokenizerFast

            self._tokenizer = PreTrainedTokenizerFast.from_pretrained(directory)
        else:
            self._tokenizer = AutoTokenizer.from_pretrained(directory)
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=getattr(torch, self.dtype)).eval()
        model.generation_config.eos_token_id = with_turn_ends(model.generation_config.eos_token_id, directory)
        block_bits, head_bits = self._bits(directory)
        if block_bits:
            quantize_for_decoding(model, block_bits, head_bits)
        if getattr(model.config, "_attn_implementation", None) == "sdpa":
            use_decode_attention(model)
        self._model = model

    def _bits(self, directory: Path) -> tuple[int | None, int | None]:
        """(transformer blocks, output layer) bits to decode with; None: the dense weights.

        auto keeps a GGUF's own precision (SmolLM2's file: Q4_1 blocks, Q8_0 embeddings), so nothing
        is lost that the file had; a model directory (bf16 or fp32 weights) gets 8-bit, which
        rounds each row to 1/254 of its largest weight."""
        if self.weights == "dense":
            return None, None
        if self.weights in ("int4", "int8"):
            bits = int(self.weights[3:])
            return bits, 8
        shipped = directory / SHIPPED
        if not shipped.exists():
            return 8, 8
        types = json.loads(shipped.read_text())
        return (4 if types.get("blocks", "").startswith("Q4") else 8), 8

    def _count_tokens(self, text: str) -> int:
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def prompt_tokens(self, messages: list[dict]) -> int:
        encoded = self._tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        return len(encoded["input_ids"])

    def stream(self, messages: list[dict], options: GenerationOptions,
               cancel: threading.Event, state: StreamState) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

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
        from assistant.backends import repetition

        if repetition.active(options):  # over the reply's tokens only (assistant/backends/repetition.py)
            sampling["logits_processor"] = [repetition.torch_processor(
                prompt_tokens, options.repetition_penalty, options.no_repeat_ngram_size)]
        generated: dict = {}
        errors: list[BaseException] = []

        def work() -> None:
            try:
                torch.set_num_threads(self._share.threads())
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
