"""Shared fixtures: one real MiniLM embedder per test session, fresh data dirs per test."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach the Hub
# memchat reads the .env in its config dir: the tests, and the commands they start, read no one's own
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="memchat-tests-config-")

from memory.embedding import Embedder  # noqa: E402
from memory.memory import Memory  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
LOCOMO = REPO.parent / "shared" / "data" / "locomo" / "locomo-dev.json"  # not in the repo: its licence
LOCOMO_MINI = REPO / "tests" / "data" / "locomo-mini.json"  # LoCoMo's format, made for memchat (see its maker)
MEMCHAT = [sys.executable, "-m", "assistant.cli"]


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """Converted models (SmolLM2's safetensors, the embedder's ONNX copy), made once per test session."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def embedder(model_cache) -> Embedder:
    """The packaged all-MiniLM-L6-v2, loaded once for the whole run, with its ONNX quick path."""
    model = Embedder(cache_dir=model_cache)
    model.encode(["warm up"])  # exports the ONNX copy that every other test and CLI run reuses
    model.encode(["warm up", "the batch path too", "and a third"])
    return model


@pytest.fixture
def data_dir(tmp_path) -> Path:
    return tmp_path / "memchat-data"


@pytest.fixture
def memory(data_dir, embedder):
    store = Memory(data_dir, embedder)
    yield store
    store.close()


@pytest.fixture
def cli_env(data_dir, model_cache) -> dict:
    env = dict(os.environ)
    env["MEMCHAT_DATA_DIR"] = str(data_dir)
    env["MEMCHAT_MODEL_CACHE"] = str(model_cache)
    env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.fixture(scope="session")
def local_backend(model_cache):
    """The local backend as a user gets it: the engine this CPU runs best (ONNX Runtime on AVX2)."""
    from assistant.backends.local import LocalBackend

    backend = LocalBackend(None, model_cache)
    backend.load()
    return backend


@pytest.fixture(scope="session")
def torch_backend(model_cache, local_backend):  # local_backend: the GGUF is converted once
    """The torch engine whatever the CPU, so its packed-weight path is tested on every machine."""
    from assistant.backends.local import LocalBackend

    backend = LocalBackend(None, model_cache, runtime="torch")
    backend.load()
    return backend


@pytest.fixture(scope="session")
def onnx_backend(model_cache, local_backend):
    """The ONNX Runtime engine whatever the CPU."""
    from assistant.backends.local import LocalBackend

    backend = LocalBackend(None, model_cache, runtime="onnx")
    backend.load()
    return backend


@pytest.fixture(scope="module")
def pinecone_service():
    """A loopback Pinecone (tests/pinecone_standin.py) for a module's tests that use the store."""
    from tests.pinecone_standin import PineconeStandIn

    with PineconeStandIn() as service:
        yield service


@pytest.fixture(scope="module")
def weaviate_service():
    """A loopback Weaviate (tests/weaviate_standin.py) for a module's tests that use the store."""
    from tests.weaviate_standin import WeaviateStandIn

    with WeaviateStandIn() as service:
        yield service
