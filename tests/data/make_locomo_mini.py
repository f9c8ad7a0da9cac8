"""Writes locomo-mini.json: two small conversations in LoCoMo's format, made for memchat's tests.

Each conversation is everyday filler (memory/corpus.py, seeded) with hand-written facts placed in
it, and questions of three kinds: ones that share rare words with their evidence (lexical search
finds them), paraphrases that share none (only meaning finds them), and answers that sit beside
the question that was asked in the conversation (the neighbouring-turn signal finds them).
Run: .venv/bin/python tests/data/make_locomo_mini.py
"""
from __future__ import annotations

import json
import random
from pathlib import Path

from memory import corpus

CONVERSATIONS = [
    {
        "speakers": ("Ada", "Ben"),
        "dates": ["9:15 am on 3 March, 2024", "6:40 pm on 21 April, 2024", "11:05 am on 2 June, 2024"],
        # (session, speaker index, text, [(question, answer, category)], optional image caption)
        "facts": [
            (1, 0, "We finally adopted a tortoise and named him Sheldon.",
             [("What is the name of Ada's tortoise?", "Sheldon", 4)], "a photo of a small tortoise on a lawn"),
            (1, 1, "I've started cello lessons on Thursday evenings.",
             [("Which musical instrument is Ben learning to play?", "cello", 4)]),
            (1, 0, "Where did you go on holiday last summer?", []),
            (1, 1, "Mostly Portugal: we drove down the Algarve coast and swam every day.",
             [("Where did Ben travel for his summer holiday?", "Portugal, the Algarve coast", 1)]),
            (2, 0, "My sister Greta moved to Vancouver for a nursing job.",
             [("Where does Ada's sister Greta live now?", "Vancouver", 4)]),
            (2, 1, "The dentist said my wisdom tooth has to come out in May.",
             [("What oral surgery is Ben having?", "his wisdom tooth removed", 2)]),
            (3, 0, "I passed the glider pilot exam on my second try!",
             [("Which license did Ada earn?", "a glider pilot licence", 4)]),
            (3, 1, "Our kitchen is now painted a bright saffron yellow.",
             [("What colour did Ben paint the kitchen?", "saffron yellow", 4)]),
        ],
    },
    {
        "speakers": ("Mira", "Tom"),
        "dates": ["8:30 pm on 14 January, 2024", "1:20 pm on 9 February, 2024", "7:00 pm on 30 March, 2024"],
        "facts": [
            (1, 0, "I'm allergic to shellfish, so no prawns for me.",
             [("What food allergy does Mira have?", "shellfish", 4)]),
            (1, 1, "I sold my old Vespa and bought an electric cargo bike.",
             [("What vehicle did Tom replace his scooter with?", "an electric cargo bike", 4)]),
            (2, 0, "What are you reading these days?", []),
            (2, 1, "A thick history of the Byzantine empire, slow going but fascinating.",
             [("What book is Tom reading?", "a history of the Byzantine empire", 1)]),
            (2, 0, "My grandmother turns ninety on the twelfth of April.",
             [("When is the birthday of Mira's grandmother?", "12 April", 2)]),
            (3, 1, "We planted three apple trees and a fig behind the shed.",
             [("Which fruit trees did Tom plant?", "three apple trees and a fig", 4)]),
            (3, 0, "My new job is at a wind turbine company in Aarhus.",
             [("Where does Mira work now?", "a wind turbine company in Aarhus", 4)]),
        ],
    },
]
FILLER_PER_SESSION = 24


def build(seed: int = 5) -> list[dict]:
    rng = random.Random(seed)
    filler = iter(corpus.turns(2 * 3 * FILLER_PER_SESSION, seed=seed))
    samples = []
    for n, spec in enumerate(CONVERSATIONS):
        a, b = spec["speakers"]
        conversation = {"speaker_a": a, "speaker_b": b}
        qa = []
        for session, date in enumerate(spec["dates"], start=1):
            turns = [(rng.randrange(2), next(filler), [], None) for _ in range(FILLER_PER_SESSION)]
            facts = [(f[1], f[2], f[3], f[4] if len(f) > 4 else None) for f in spec["facts"] if f[0] == session]
            at = rng.randrange(2, FILLER_PER_SESSION - 6)
            turns[at:at] = facts  # facts stay together, in order, so a question keeps its answer beside it
            conversation[f"session_{session}_date_time"] = date
            conversation[f"session_{session}"] = []
            for i, (who, text, questions, caption) in enumerate(turns, start=1):
                dia_id = f"D{session}:{i}"
                turn = {"speaker": (a, b)[who], "dia_id": dia_id, "text": text}
                if caption:
                    turn["blip_caption"] = caption
                conversation[f"session_{session}"].append(turn)
                qa += [{"question": q, "answer": answer, "evidence": [dia_id], "category": category}
                       for q, answer, category in questions]
        samples.append({"sample_id": f"memchat-mini-{n + 1}", "conversation": conversation, "qa": qa})
    return samples


if __name__ == "__main__":
    out = Path(__file__).with_name("locomo-mini.json")
    out.write_text(json.dumps(build(), indent=1) + "\n")
    print(f"wrote {out}")
