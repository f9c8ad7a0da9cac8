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
from pathlib import Path

import numpy as np

from memory.runtime.free_cores import CoreShare

SPIN_AFTER_RUN_US = 1000  # how long an idle worker thread spins for more work before it sleeps


def onnx_path(source: str, cache_dir: Path) -> Path:
    return Path(cache_dir) / f"embedder-{Path(source).name}-{_weights_tag(source)}.onnx"


class OnnxEncoder:
    """A sentence-transformers model (transformer + mean pooling + normalize) run by ONNX Runtime."""

    def __init__(self, path: Path, tokenizer, pad_token: str, max_tokens: int):
        """tokenizer: a `tokenizers.Tokenizer`; a copy is set to truncate and pad like the model."""
        from tokenizers import Tokenizer

        self.path = path
        self._share = CoreShare()
        self.threads = self._share.most
        self.session = self._session(self.threads)
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id(pad_token) or 0, pad_token=pad_token)

    def _session(self, threads: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = 0 if threads >= self._share.most else threads  # 0: its own default
        # Idle worker threads spin 1 ms for more work, then sleep. By default they spun for 26 ms of a
        # core after every run, and the chat model's prefill, which starts a few ms after the
        # message's encode, shared the cores with them: with the bound a person waited 2-25 ms less
        # for a reply's first token, though the encode itself, waking its sleeping thread, took
        # ~5 ms longer (docs/benchmarks.md). ONNX Runtime >= 1.26 reads the key; older ones ignore it.
        options.add_session_config_entry("session.intra_op.spin_duration_us", str(SPIN_AFTER_RUN_US))
        options.log_severity_level = 3
        # No memory arena: it keeps the largest batch shape it has ever run (an import's) for the
        # life of the process; the soak grew +20 % in steps at each import with it and 0 % without,
        # and one-text and batch speeds did not move (docs/benchmarks.md, "A long life").
        options.enable_cpu_mem_arena = False
        return onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _fit_threads(self, batches: bool) -> None:
        """One thread per CPU other programs leave free (memory/runtime/free_cores.py), by a new
        session (~0.12 s) when that changes. With one of two cores busy, batches of chat turns
        embedded at 98-130/s on two threads and 157-159/s on one (idle: 251 and 154). One text
        gains ~1 ms from it (8.2 → 7.2 ms), less than a new session costs a chat turn, so a single
        encode only moves back up to all cores once they are free again."""
        threads = self._share.threads(wait=batches)  # a batch waits only before the sampler has a window
        if threads != self.threads and (batches or threads > self.threads):
            self.session, self.threads = self._session(threads), threads

    def encode_many(self, texts: list[str], batch: int = 8) -> np.ndarray:
        """Many texts in small batches of similar length (little padding), in the given order.
        Batches of 8 embedded real chat turns fastest here (118/s; 96/s at 64)."""
        self._fit_threads(batches=True)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), 0), dtype=np.float32)
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            vectors = self._run([texts[i] for i in chosen])
            if out.shape[1] == 0:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[chosen] = vectors
        return out

    def encode(self, texts: list[str]) -> np.ndarray:
        if self.threads < self._share.most:  # an import under load left it on fewer
            self._fit_threads(batches=False)
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
