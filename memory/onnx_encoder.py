"""The quick engine: a sentence-transformers model run by ONNX Runtime: one or two texts on every
CPU, and batches too where bfloat16 is not native (memory/embedding.py says why).

The ONNX file is exported once from the loaded torch model into the model cache (about a second),
named after the weights and the exporting torch, so a stale copy is never used. Opening it later
needs neither torch nor transformers: tokens come from the `tokenizers` library.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.metadata
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from memory.runtime.free_cores import CoreShare

BATCH = 8  # texts per run in encode_many: 8 real chat turns a batch embedded fastest (measured on two intra-op threads)


def onnx_path(source: str, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"embedder-{Path(source).name}-{_weights_tag(source)}.onnx"


class OnnxEncoder:
    """A sentence-transformers model (transformer + mean pooling + normalize) run by ONNX Runtime.

    Every run is single-threaded; a batch's runs go in parallel, one thread per CPU other programs
    leave free. Inside a chat turn a one-text encode on two intra-op threads took 8.5-11 ms at the
    median, on one 5.2-5.8 ms (back to back outside a turn, 3.0-3.3 and 4.5-4.9 ms): in a turn the
    second thread has to be woken and handed each operator's half, which cost more than the half
    saves for a text of a dozen tokens. A long text is the other way round (128 tokens: 36 ms on one
    thread, 22 on two), a cost taken for the short messages a chat mostly gets (docs/benchmarks.md)."""

    def __init__(self, path: Path, tokenizer, pad_token: str, max_tokens: int):
        """tokenizer: a `tokenizers.Tokenizer`; a copy is set to truncate and pad like the model,
        here only: encode_many's threads share it, which the library allows while nothing changes it."""
        from tokenizers import Tokenizer

        self.path = path
        self._share = CoreShare()
        self.threads = self._share.most  # runs side by side in the last call with several batches
        self.session = self._session()
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad_token) or 0, pad_token=pad_token)

    def _session(self):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One thread, the caller's: no worker pool, so nothing spins on a core after a run either
        # (ONNX Runtime's idle workers spun 26 ms after every run by default, beside the chat
        # model's prefill that starts a few ms later).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # No memory arena: it keeps the largest batch shape it has ever run (an import's) for the
        # life of the process; the soak grew +20 % in steps at each import with it and 0 % without,
        # and one-text and batch speeds did not move (docs/benchmarks.md, "A long life").
        options.enable_cpu_mem_arena = False
        return onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def encode_many(self, texts: list[str], batch: int = BATCH) -> np.ndarray:
        """Many texts in small batches of similar length (little padding), in the given order, the
        batches spread over one thread per CPU other programs leave free (with one of two cores
        busy, batches of chat turns embedded at 98-130/s on two threads and 157-159/s on one)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [order[start : start + batch] for start in range(0, len(order), batch)]
        if len(batches) > 1:  # the count waits only before the sampler has a window
            self.threads = self._share.threads(wait=True)
        if self.threads > 1 and len(batches) > 1:
            with ThreadPoolExecutor(self.threads, thread_name_prefix="memchat-embed") as pool:
                results = list(pool.map(lambda chosen: self._run([texts[i] for i in chosen]), batches))
        else:
            results = [self._run([texts[i] for i in chosen]) for chosen in batches]
        out = np.empty((len(texts), results[0].shape[1] if results else 0), dtype=np.float32)
        for chosen, vectors in zip(batches, results):
            out[chosen] = vectors
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        return self._run(texts)

    def _run(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer.encode_batch(texts)
        feed = {"input_ids": np.array([e.ids for e in batch], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64)}
        vectors = self.session.run(None, feed)[0].astype(np.float32, copy=False)
        return np.ascontiguousarray(vectors)


def _weights_tag(source: str) -> str:
    """Changes when the weights or the exporting torch change, so a stale copy is never used."""
    parts = [importlib.metadata.version("torch")]
    directory = Path(source)
    for file in sorted(directory.rglob("*")) if directory.is_dir() else []:
        if file.is_file():
            stat = file.stat()
            parts.append(f"{file.relative_to(directory)}:{stat.st_size}:{stat.st_mtime_ns}")
    parts.append(str(directory.resolve()) if directory.exists() else source)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def export(model, path: Path) -> None:
    """Export a loaded SentenceTransformer's transformer + mean pooling + normalization as one
    ONNX graph (about a second). Call it on the torch thread."""
    import torch

    from memory.runtime.private_files import ensure_private_dir

    modules = [type(m).__name__ for m in model]
    pooling = model[1].get_config_dict().get("pooling_mode") if len(modules) > 1 else None
    if modules[:2] != ["Transformer", "Pooling"] or pooling != "mean":
        raise ValueError(f"only mean-pooled models are exported (this one is {modules}, {pooling})")

    class Pooled(torch.nn.Module):
        def __init__(self, transformer):
            super().__init__()
            self.transformer = transformer

        def forward(self, input_ids, attention_mask):
            hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean.float(), dim=-1)

    ensure_private_dir(path.parent)
    # A float32 copy (ONNX Runtime's CPU kernels are fp32); the loaded model may be encoding meanwhile.
    transformer = copy.deepcopy(model[0].auto_model).float().eval()
    example = model.tokenizer(["an example sentence"], return_tensors="pt")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        with torch.no_grad(), _quiet():
            torch.onnx.export(
                Pooled(transformer).eval(), (example["input_ids"], example["attention_mask"]), str(tmp),
                input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "embedding": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
        os.replace(tmp, path)  # complete or absent
    finally:
        tmp.unlink(missing_ok=True)


def _quiet():
    """The exporter warns about tracing details that do not apply to a fixed-architecture encoder."""
    import contextlib
    import warnings

    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore")
    return stack
