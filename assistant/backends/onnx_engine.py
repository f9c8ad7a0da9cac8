"""The local model on ONNX Runtime GenAI: the engine `auto` takes on every CPU (assistant/backends/local.py).

The converted safetensors model is built once into an int4 ONNX model (onnxruntime-genai's model
builder, ~10 s, in a child process so its torch work stays out of this one), beside it in the
model cache. Loading it later takes ~0.4 s and imports neither torch nor transformers. On a
2-core AVX2 EPYC it gave the first token of a 300-token prompt in ~0.7 s and decoded 100-120
tokens/s, where the torch path gave 0.8 s and 25 tokens/s (docs/benchmarks.md).

ONNX Runtime counted one core on these 2-vCPU machines and ran its matrix products on one thread
(first token 1.1 s). The model is loaded with one thread per CPU that other programs leave free
instead (memory/runtime/free_cores.py: their use over the last second, looked at when loading
and before each reply), and loaded again (~0.2 s) when that number changes: a thread on a core
another program keeps busy slowed every step (decoding 67 tokens/s on two threads against 101 on one).
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator

from assistant.backends import repetition
from assistant.backends.base import BackendError, GenerationOptions, StreamState
from assistant.backends.turn_end import with_turn_ends
from memory.runtime.free_cores import CoreShare

PRECISION = "int4"


def built_path(directory: Path) -> Path:
    return directory.with_name(f"{directory.name}-onnx-{PRECISION}")


class OnnxEngine:
    def __init__(self, directory: Path):
        self.directory = directory
        self.built = built_path(directory)
        self._model = None
        self._tokenizer = None
        self._share = CoreShare()
        self.threads = 0  # the loaded model's; 0 before load
        # Memoized per engine (the prompt recounts the same recent turns every turn). A class-level
        # lru_cache held every engine, and so every model, alive after a switch.
        self.count_tokens = functools.lru_cache(maxsize=4096)(self._count_tokens)

    def describe(self) -> str:
        threads = self.threads or self._share.most
        return (f"onnxruntime-genai {PRECISION}, {threads} of {self._share.most} threads "
                "(one per CPU other programs leave free)")

    def load(self) -> None:
        import onnxruntime_genai as og

        if hasattr(og, "disable_telemetry_events"):  # memchat sends nothing anywhere
            og.disable_telemetry_events()
        if not (self.built / "genai_config.json").exists():
            self._build()
        self._load_model(self._share.threads(wait=True))

    def _load_model(self, threads: int) -> None:
        import onnxruntime_genai as og

        config = og.Config(str(self.built))
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        model = og.Model(config)
        self._model, self._tokenizer, self.threads = model, og.Tokenizer(model), threads

    def _build(self) -> None:
        from memory.runtime.private_files import ensure_private_dir

        print(f"memchat: building the local model for ONNX Runtime once into {self.built.parent} (about 10 s)",
              file=sys.stderr)
        ensure_private_dir(self.built.parent)
        tmp = self.built.with_name(self.built.name + f".{os.getpid()}.tmp")
        scratch = tmp.with_name(tmp.name + "-cache")
        command = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-m", str(self.directory),
                   "-i", str(self.directory), "-o", str(tmp), "-p", PRECISION, "-e", "cpu", "-c", str(scratch)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
                raise BackendError(f"could not build the local model for ONNX Runtime: {tail[0][:200]}; "
                                   "set MEMCHAT_LOCAL_RUNTIME=torch to use torch instead", "error")
            config_path = tmp / "genai_config.json"
            config = json.loads(config_path.read_text())
            config["model"]["eos_token_id"] = with_turn_ends(config["model"].get("eos_token_id"), self.directory)
            config_path.write_text(json.dumps(config, indent=2))
            os.replace(tmp, self.built)  # complete or absent
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(scratch, ignore_errors=True)

    # -- the engine protocol ---------------------------------------------------------------------
    def _count_tokens(self, text: str) -> int:
        return len(self._tokenizer.encode(text))

    def _encode_chat(self, messages: list[dict]):
        prompt = self._tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        return self._tokenizer.encode(prompt)

    def prompt_tokens(self, messages: list[dict]) -> int:
        return len(self._encode_chat(messages))

    def stream(self, messages: list[dict], options: GenerationOptions,
               cancel: threading.Event, state: StreamState) -> Iterator[str]:
        import onnxruntime_genai as og

        try:
            if (threads := self._share.threads()) != self.threads:  # another program started or stopped
                self._load_model(threads)
        except RuntimeError as exc:  # what ONNX Runtime's errors arrive as
            raise BackendError(f"local model failed: {exc}") from None
        ids = self._encode_chat(messages)
        search = {"max_length": len(ids) + options.max_new_tokens, "do_sample": not options.greedy}
        if not options.greedy:
            search.update(temperature=max(options.temperature, 1e-3), top_p=options.top_p, top_k=options.top_k)
        if options.seed is not None:
            search["random_seed"] = options.seed
        completion = 0
        # Repetition control through the logits between steps, not the search options' own
        # repetition_penalty / no_repeat_ngram_size: those count the prompt's tokens too
        # (assistant/backends/repetition.py says why that hurts answers).
        shaping = repetition.active(options)
        reply: list[int] = []
        try:
            params = og.GeneratorParams(self._model)
            params.set_search_options(**search)
            generator = og.Generator(self._model, params)
            generator.append_tokens(ids)
            detokenizer = self._tokenizer.create_stream()
            while not generator.is_done() and not cancel.is_set():
                if shaping:
                    logits = generator.get_logits()
                    repetition.shape_logits(logits.reshape(-1), reply, options.repetition_penalty,
                                            options.no_repeat_ngram_size)
                    generator.set_logits(logits)
                generator.generate_next_token()
                token = int(generator.get_next_tokens()[0])
                reply.append(token)
                completion += 1
                if token in self._tokenizer.eos_token_ids:
                    break
                text = detokenizer.decode(token)
                if text:
                    yield text
        except RuntimeError as exc:  # what ONNX Runtime's errors arrive as
            raise BackendError(f"local model failed: {exc}") from None
        state.usage = {"prompt_tokens": len(ids), "completion_tokens": completion}
        state.finish_reason = "cancelled" if cancel.is_set() else (
            "length" if completion >= options.max_new_tokens else "stop")

