"""The tokens that end an assistant's turn in the catalogue families' chat templates.

A GGUF names one end-of-sequence token, and the converted model stops there. That is the turn's
end for SmolLM2 and Qwen2.5 (`<|im_end|>`), but Gemma 3's files name `<eos>` while its template
ends a turn with `<end_of_turn>`, and Llama 3.2's end one with `<|eot_id|>`: a model that meets
its turn's end and goes on writes the next turn itself. Both engines stop at any of these that
the model's tokenizer has (none of them belongs in a reply). Gemma 3 and Llama 3.2 could not be
downloaded here, so this is read from their published templates, not run.
"""
from __future__ import annotations

from pathlib import Path

END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>")


def end_of_turn_ids(directory: Path) -> list[int]:
    """The ids, in the converted model's tokenizer.json, of the end-of-turn tokens it has."""
    path = Path(directory) / "tokenizer.json"
    if not path.is_file():
        return []
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    return sorted({i for token in END_OF_TURN if (i := tokenizer.token_to_id(token)) is not None})


def with_turn_ends(eos, directory: Path) -> int | list[int]:
    """An eos id or list of ids, with the model's end-of-turn tokens added."""
    ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos]) | set(end_of_turn_ids(directory))
    merged = sorted(ids)
    return merged[0] if len(merged) == 1 else merged
