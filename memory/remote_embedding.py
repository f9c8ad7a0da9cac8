"""Embedding through a provider's API: Gemini, Hugging Face (Inference Providers or a Text
Embeddings Inference server) and OpenAI (or any OpenAI-compatible server: Ollama, vLLM, LM Studio).

Each provider is a small class that sends one batch through the provider's own SDK; what they
share is here once: batches within the provider's documented limits, retries with backoff on
408/429/5xx (memory/stores/remote.py), unit-length float32 vectors, a dimension discovered from the
first answer, and failures as one line without the key. A provider that cannot be reached raises
EmbeddingUnavailable, which the memory turns into "store now, embed later"; one that refuses (a
wrong key, an unknown model) raises EmbeddingRefused, which is shown and changes nothing.

Keys come from the settings (the providers' usual variables) and stay in this object: they are
never written anywhere, and failure messages have them scrubbed.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from memory.embedding import RECENT_VECTORS, Span
from memory.errors import BadInput, EmbeddingRefused, EmbeddingUnavailable
from memory.stores.remote import RETRY_STATUS, call

DIM_PROBE = "dimension probe"
OVERLAP_CHARS = 200


class RemoteEmbedder:
    """The Embedder interface (model_id, dim, encode, encode_query, split) over a provider's API."""

    provider = ""
    label = ""  # the provider's name in messages
    default_model = ""
    key_var = ""
    max_batch = 32  # texts per request
    max_batch_chars = 10**9  # characters per request, where the provider limits tokens per request
    window_chars = 2000  # characters per embedded window (below the model's token limit at ~4 chars a token)
    dtype = "float32"
    cache_dir = None

    def __init__(self, model: str | None = None, key: str | None = None, timeout_s: float = 60.0):
        self.model = model or self.default_model
        self.model_id = f"{self.provider}:{self.model}"
        self.key = key
        self.timeout_s = timeout_s
        self._dim: int | None = None
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self.batch_size = self.max_batch

    # -- what a provider supplies ----------------------------------------------------------------
    def _request(self, texts: list[str], query: bool) -> list[list[float]]:
        raise NotImplementedError

    @staticmethod
    def _status_of(exc: Exception) -> int | None:
        """The HTTP status of an SDK's error (None: no answer at all)."""
        for value in (getattr(exc, "status_code", None), getattr(exc, "code", None),
                      getattr(getattr(exc, "response", None), "status_code", None)):
            if isinstance(value, int) and value > 0:
                return value
        return None

    # -- the Embedder interface ------------------------------------------------------------------
    @property
    def dim(self) -> int:
        if self._dim is None:
            self.encode([DIM_PROBE])
        return self._dim

    def known_dim(self, dim: int) -> None:
        """The dimension recorded with this model in the store: no probe needed to open it offline."""
        self._dim = self._dim or dim

    @property
    def engine(self) -> str:
        return f"{self.provider} API"

    def warm_up(self) -> None:
        """Nothing to load; no call is made before one is needed."""

    def encode(self, texts: list[str], batch_size: int | None = None, query: bool = False) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in batches the provider accepts."""
        rows: list[list[float]] = []
        for batch in self._batches(texts):
            got = call(lambda: self._request(batch, query), store=f"{self.label} embeddings",
                       what=f"embedding {len(batch)} text(s) with {self.model}", status_of=self._status_of,
                       secrets=(self.key or "",), key_var=self.key_var, unavailable=EmbeddingUnavailable,
                       refused=EmbeddingRefused, refuses=lambda s: s is not None and s not in RETRY_STATUS)
            if len(got) != len(batch):
                raise EmbeddingUnavailable(f"{self.label} returned {len(got)} vectors for {len(batch)} texts")
            rows += got
        if not rows:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        vectors = np.asarray(rows, dtype=np.float32)
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise EmbeddingRefused(f"{self.model_id} now returns {vectors.shape[1]}-dimensional vectors, not "
                                   f"{self._dim}; run `memchat memory reembed`")
        self._dim = vectors.shape[1]
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
        return vectors

    def _batches(self, texts: list[str]):
        batch: list[str] = []
        chars = 0
        for text in texts:
            if batch and (len(batch) >= self.max_batch or chars + len(text) > self.max_batch_chars):
                yield batch
                batch, chars = [], 0
            batch.append(text)
            chars += len(text)
        if batch:
            yield batch

    def encode_query(self, text: str) -> np.ndarray:
        """A query's vector; the last few are kept (a session turn is embedded, then recalled with)."""
        cached = self._recent.get(text)
        if cached is None:
            cached = self._recent[text] = self.encode([text], query=True)[0]
            while len(self._recent) > RECENT_VECTORS:
                self._recent.popitem(last=False)
        return cached

    def remember_vector(self, text: str, vector: np.ndarray) -> None:
        # A stored turn's vector is not kept for queries: a provider with task types embeds it as a
        # document, which is not the vector the same text gets as a query.
        pass

    def split(self, text: str) -> list[Span]:
        """Overlapping character windows that fit the model's input limit (no tokenizer at hand)."""
        if len(text) <= self.window_chars:
            return [Span(0, len(text))]
        step = self.window_chars - OVERLAP_CHARS
        return [Span(start, min(start + self.window_chars, len(text)))
                for start in range(0, len(text) - OVERLAP_CHARS, step)]


class GeminiEmbedder(RemoteEmbedder):
    """google-genai `models.embed_content` (batchEmbedContents: at most 100 texts a request), with
    task types: RETRIEVAL_DOCUMENT for what is stored, RETRIEVAL_QUERY for what is asked."""

    provider, label, default_model, key_var = "gemini", "Gemini", "gemini-embedding-001", "GEMINI_API_KEY"
    max_batch = 100
    window_chars = 6000  # gemini-embedding-001 reads 2,048 tokens

    def __init__(self, model=None, key=None, timeout_s=60.0, address: str | None = None):
        super().__init__(model, key, timeout_s)
        if not key:
            raise EmbeddingRefused("no Gemini key for embeddings: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
        from google import genai
        from google.genai import types

        options = types.HttpOptions(timeout=int(timeout_s * 1000), retry_options=types.HttpRetryOptions(attempts=1))
        if address:  # another endpoint (a proxy)
            options.base_url = address
        self._client = genai.Client(api_key=key, http_options=options)
        self._types = types

    def _request(self, texts, query):
        config = self._types.EmbedContentConfig(task_type="RETRIEVAL_QUERY" if query else "RETRIEVAL_DOCUMENT")
        response = self._client.models.embed_content(model=self.model, contents=texts, config=config)
        return [e.values for e in response.embeddings or []]


class OpenAIEmbedder(RemoteEmbedder):
    """The official openai SDK's embeddings endpoint: OpenAI itself, or any OpenAI-compatible server
    at `address` (Ollama, vLLM, LM Studio). At most 2,048 inputs and 300,000 tokens a request."""

    provider, label, default_model, key_var = "openai", "OpenAI", "text-embedding-3-small", "OPENAI_API_KEY"
    max_batch = 2048
    max_batch_chars = 600_000  # ~150,000 tokens: half the per-request token limit
    window_chars = 24_000  # text-embedding-3 reads 8,191 tokens

    def __init__(self, model=None, key=None, timeout_s=60.0, address: str | None = None):
        super().__init__(model, key, timeout_s)
        if not key and not address:
            raise EmbeddingRefused("no OpenAI key for embeddings: set OPENAI_API_KEY, or MEMCHAT_OPENAI_BASE_URL "
                                   "for a local OpenAI-compatible server")
        import openai

        # A local server takes no key, but the SDK insists on one: a placeholder, never a real key.
        self._client = openai.OpenAI(api_key=key or "no-key", base_url=address, timeout=timeout_s, max_retries=0)

    def _request(self, texts, query):
        response = self._client.embeddings.create(model=self.model, input=texts)
        return [d.embedding for d in sorted(response.data, key=lambda d: d.index)]


class HFEmbedder(RemoteEmbedder):
    """huggingface_hub `InferenceClient.feature_extraction`: a Hub model on Inference Providers
    (HF_TOKEN), or a Text Embeddings Inference server at `address` (32 inputs a request by default)."""

    provider, label, default_model, key_var = "hf", "Hugging Face", "sentence-transformers/all-MiniLM-L6-v2", "HF_TOKEN"
    max_batch = 32
    window_chars = 1500  # many Hub embedding models read 512 tokens; longer input is truncated, not refused

    def __init__(self, model=None, key=None, timeout_s=60.0, address: str | None = None):
        super().__init__(model, key, timeout_s)
        if not key and not address:
            raise EmbeddingRefused("no Hugging Face token for embeddings: set HF_TOKEN, or MEMCHAT_HF_EMBED_URL for a "
                                   "Text Embeddings Inference server")
        from huggingface_hub import InferenceClient

        self._target = address or self.model
        self._client = InferenceClient(token=key, timeout=timeout_s)

    def _request(self, texts, query):
        vectors = self._client.feature_extraction(texts, model=self._target, truncate=True)
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim == 3:  # a model without pooling answers per token: mean-pool it
            vectors = vectors.mean(axis=1)
        return vectors.tolist()


EMBEDDERS = {cls.provider: cls for cls in (GeminiEmbedder, HFEmbedder, OpenAIEmbedder)}
PROVIDERS = ("local", *EMBEDDERS)


def default_model(provider: str) -> str:
    """The model a provider embeds with when MEMCHAT_EMBED_MODEL does not name one."""
    return EMBEDDERS[provider].default_model


def remote_embedder(provider: str, model: str | None, key: str | None, address: str | None,
                    timeout_s: float = 60.0) -> RemoteEmbedder:
    """The embedder for `provider` (gemini, hf or openai) with its key and, if not the provider's
    own service, the address of the server to use."""
    if provider not in EMBEDDERS:
        raise BadInput(f"unknown embedding provider {provider!r}; use one of: {', '.join(PROVIDERS)}")
    return EMBEDDERS[provider](model, key, timeout_s, address=address)
