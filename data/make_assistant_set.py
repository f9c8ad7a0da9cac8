"""Writes assistant-set-{dev,test,heldout}.json: a person talking to an assistant, in LoCoMo's format.

LoCoMo is two friends trading short turns. memchat's usual conversation is another shape: a person
with one project over months (a bakery's Flask site, a thesis, a marathon, a flat renovation),
short messages from them, and long assistant replies (several paragraphs, lists, fenced code or
tables, 1,200-3,000 characters, many past MiniLM's 256-token window) that echo the person's words,
repeat the project's name and talk about generic things (debugging, deployment, recipes, trips).
Such replies match almost any question lexically, which is what this set is for measuring.

Each part has 8 people (data/assistant_set_{dev,test,heldout}_pool.py, and their instructions and
preferences in data/assistant_set_habits.py), 6-9 sessions each over months.
A session opens with the person's topic; the rest of it, in seeded random order, is the statements
planted for that session, follow-ups, thanks, a side errand and distractors. A planted statement is
a person turn of its own: said alone (the reply is a short acknowledgement), or with a follow-up
question (a long reply that often takes up the statement's words, "Good to know that you ..."), or
inside the session's opening message. Every evidence dia_id is the person's turn, never the echo.
Kinds (each qa item has "kind" and LoCoMo's integer "category"):
  fact (4)          a fact about the person or project said once; the question paraphrases it, some
                    sharing a rare word with the statement ("flume"), most sharing none.
  preference (4)    "I'm vegetarian": asked about later, or needed by a request that names none of it
                    ("Suggest something I could cook for friends coming over").
  instruction (3)   a standing instruction said once, and a question that needs it but does not
                    resemble it ("How far is it from Lyon to Geneva by car?" -> the km turn).
  changed (4)       an old value in an early session, a new one later; evidence is the newer turn,
                    the older one is in "stale_evidence" (the eval ignores it).
  multi-session (1) evidence is two or three person turns in different sessions.
  temporal (2)      "When did I ...?"; the statement says "today" and the answer is the session's date.
Distractors: the person's noise turns on nearby topics, side errands, and long replies full of the
questions' generic words (a long reply about databases when the question asks which database).
No question names a time window ("tonight", "in May") that memchat's recall would filter by.
The dev part is for choosing weights; the test part, with other people, projects and seeds, is
reported and never tuned on. The held-out part, written after the standing-memory rule and the recall
weights were fixed, checks both on text neither was shaped by. Deterministic: string seeds, no set or hash order.
Run: .venv/bin/python data/make_assistant_set.py [--out DIR]   (default: next to this file)
"""
from __future__ import annotations

import argparse
import json
import random
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import assistant_set_dev_pool as dev_pool  # noqa: E402
import assistant_set_habits as habits  # noqa: E402
import assistant_set_heldout_pool as heldout_pool  # noqa: E402
import assistant_set_replies as replies  # noqa: E402
import assistant_set_test_pool as test_pool  # noqa: E402
import assistant_set_vocab as vocab  # noqa: E402

PARTS = {"dev": (dev_pool.PEOPLE, "memchat-assistant-dev-7"), "test": (test_pool.PEOPLE, "memchat-assistant-test-31"),
         "heldout": (heldout_pool.PEOPLE, "memchat-assistant-heldout-53")}
CATEGORY = {"fact": 4, "preference": 4, "instruction": 3, "changed": 4, "multi-session": 1, "temporal": 2}
LONG_MIN, LONG_MAX = 1_200, 3_000
# First words a lead-in ("By the way, ") may lower-case; other statements keep their first word as is.
LOWERABLE = set("""The My Our We We're We've Each A An Any Always Please Keep Use Write Give Never Don't When Whenever From
Start End Skip Number Assume Add Explain Summarise Mention Ask Walk Prefer Commit Temperatures Portions Ingredient Delivery
Online New Next Now Then Several Some Members Two One First Crosswords Science Mugs Episodes Home Demolition Cinnamon
Pigeons""".split())
# Diary-style statements start with the verb ("Hired our first baker today"); said back, they get a subject.
DIARY = set("Hired Got Did Cut Ran Sent Bought Passed Flashed Recorded Picked Planted Signed Installed".split())
FLIPS = [(r"\bI am\b", "you are"), (r"\bI was\b", "you were"), (r"\bI'm\b", "you're"), (r"\bI've\b", "you've"),
         (r"\bI'd\b", "you'd"), (r"\bI'll\b", "you'll"), (r"\bI\b", "you"), (r"\bmyself\b", "yourself"), (r"\bmine\b", "yours"),
         (r"\bmy\b", "your"), (r"\bMy\b", "your"), (r"\bme\b", "you"), (r"\bwe're\b", "you're"), (r"\bWe're\b", "you're"),
         (r"\bwe've\b", "you've"), (r"\bWe've\b", "you've"), (r"\bwe\b", "you"), (r"\bWe\b", "you"), (r"\bour\b", "your"),
         (r"\bOur\b", "your"), (r"\bus\b", "you")]
SLOT = re.compile(r"\{(\w+)\}")
CHOICE = re.compile(r"\[\[([^\]]+)\]\]")
COMMON = set("what with that this have your from should about there would could when into them they their does just then "
             "than some more most also been were will like make much many want need know thing every without where which "
             "going being doing really still even".split())


def fill(template: str, slots: dict, rng: random.Random | None = None) -> str:
    """Fill the {slots} this set knows and pick each [[a|b]] wording; other braces (code, JSON) stay as written."""
    template = CHOICE.sub(lambda m: (rng.choice if rng else lambda o: o[0])(m.group(1).split("|")), template)
    return SLOT.sub(lambda m: str(slots[m.group(1)]) if m.group(1) in slots else m.group(0), template)


def lowered(text: str) -> str | None:
    """The text with its first word in lower case, where that word is not a name (None where it may be)."""
    words = text.split(" ", 2)
    if words[0] not in LOWERABLE or (words[0] == "The" and len(words) > 1 and words[1][:1].isupper()):
        return None
    return text[0].lower() + text[1:]


def echo(statement: str) -> str:
    """The person's words as the assistant says them back: "I use Vim" -> "you use Vim"."""
    text = statement.rstrip(".!?")
    if text.split(" ", 1)[0] in DIARY:
        text = "I " + text[0].lower() + text[1:]
    for pattern, repl in FLIPS:
        text = re.sub(pattern, repl, text)
    return lowered(text) or text


def lead_in(rng: random.Random, statement: str) -> str:
    """The statement said in passing ("By the way, ..."), where its first word allows it."""
    lead = rng.choice(vocab.LEADINS)
    if lead and lowered(statement):
        return lead + lowered(statement)
    if lead and statement.split(" ", 1)[0] in ("I", "I'm", "I've", "I'd", "I'll"):
        return lead + statement
    return statement


def slots_for(rng: random.Random, project: str, topic: str, terms: list[str]) -> dict:
    term, term2 = rng.sample(terms, 2)
    words = re.findall(r"[A-Za-z0-9]+", term)
    return {"project": project, "Project": project[0].upper() + project[1:], "topic": topic,
            "Topic": topic[0].upper() + topic[1:], "term": term, "term2": term2,
            "name": "_".join(w.lower() for w in words), "Name": "".join(w.capitalize() for w in words)}


def paragraph(rng: random.Random, theme: list[str], slots: dict, extra: int | None = None) -> str:
    rest = sorted(rng.sample(range(1, len(theme)), extra if extra is not None else rng.randint(2, min(4, len(theme) - 1))))
    return " ".join(fill(theme[i], slots, rng) for i in [0] + rest)


def stems(text: str) -> set[str]:
    return {w[:5] for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in COMMON}


def themes_for(rng: random.Random, family: str, asked: str) -> list[list[str]]:
    """The family's themes, those sharing most words with what was asked first (ties in seeded order)."""
    wanted = stems(asked)
    themes = rng.sample(replies.THEMES[family], len(replies.THEMES[family]))
    return sorted(themes, key=lambda theme: -len(wanted & stems(" ".join(theme))))


def long_reply(rng: random.Random, family: str, slots: dict, asked: str, said: str | None = None,
               opening: bool = False) -> str:
    """Several paragraphs of one family's themes, a list, a code block or table, echoing what was said."""
    themes = themes_for(rng, family, asked)
    head = fill(rng.choice(vocab.OPENERS if opening else vocab.FOLLOW_OPENERS), slots)
    if said:
        head = (fill(rng.choice(vocab.ECHO_LEADS), {"echo": echo(said)}) + " " + head).strip()
    body = [paragraph(rng, themes[0], slots)]
    extras = []
    if rng.random() < 0.65:
        bullets = rng.sample(vocab.BULLETS[family], rng.randint(3, 6))
        extras.append(rng.choice(vocab.BRIDGES) + "\n\n" + "\n".join("- " + fill(b, slots) for b in bullets))
    blocks = vocab.CODE if family == "software" else vocab.TABLES.get(family, [])
    if blocks and rng.random() < (0.75 if family == "software" else 0.35):
        extras.append(rng.choice(vocab.BLOCK_LEADS) + "\n\n" + fill(rng.choice(blocks), slots))
    closer = fill(rng.choice(vocab.CLOSERS), slots)
    parts = lambda: ([head] if head else []) + [*body, *extras] + ([closer] if closer else [])  # noqa: E731
    target = LONG_MIN + rng.randint(0, LONG_MAX - LONG_MIN - 400)
    for theme in themes[1:]:
        if len("\n\n".join(parts())) >= target:
            break
        body.append(paragraph(rng, theme, slots))
    if rng.random() < 0.4:
        body.insert(rng.randint(1, len(body)), paragraph(rng, rng.choice(replies.THEMES["generic"]), slots))
    while len("\n\n".join(parts())) > LONG_MAX and len(body) > 1:
        body.pop()
    return "\n\n".join(parts())


def medium_reply(rng: random.Random, family: str, slots: dict, asked: str) -> str:
    """One paragraph: the answer to a small follow-up."""
    head = fill(rng.choice(vocab.FOLLOW_OPENERS), slots)
    text = paragraph(rng, themes_for(rng, family, asked)[0], slots, extra=rng.randint(1, 3))
    return f"{head} {text}" if head else text


def session_dates(rng: random.Random, start: tuple[int, int, int], n: int) -> list[datetime]:
    day = datetime(*start)
    dates = []
    for _ in range(n):
        dates.append(day.replace(hour=rng.randint(7, 22), minute=rng.choice(range(0, 60, 5))))
        day += timedelta(days=rng.randint(12, 40))
    return dates


def locomo_date(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    return f"{hour}:{moment.minute:02d} {'am' if moment.hour < 12 else 'pm'} on {moment.day} {moment:%B}, {moment.year}"


def plant_plan(rng: random.Random, spec: dict, n: int) -> tuple[list[dict], list[dict]]:
    """The statements to plant, each with its session, and the questions that point at them by index."""
    plants, questions = [], []

    def plant(session: int, text: str, kind: str) -> int:
        plants.append({"session": session, "text": text, "kind": kind})
        return len(plants) - 1

    def ask(kind: str, question: str, answer: str, evidence: list[int], **extra) -> None:
        questions.append({"question": question, "answer": answer, "evidence": evidence, "kind": kind, **extra})

    for statement, question, answer in spec["facts"]:
        ask("fact", question, answer, [plant(rng.randrange(n), statement, "fact")])
    for statement, asked in habits.PREFERENCES[spec["sample"]]:
        at = plant(rng.randrange(n), statement, "preference")
        for question, answer in asked:
            ask("preference", question, answer, [at])
    for statement, question, answer in habits.INSTRUCTIONS[spec["sample"]]:
        ask("instruction", question, answer, [plant(rng.randrange(n - 1), statement, "instruction")])
    for old, new, question, answer in spec["changed"]:
        was = plant(rng.randrange(0, n // 2), old, "changed")
        ask("changed", question, answer, [plant(rng.randrange(n // 2 + 1, n), new, "changed")], stale_evidence=[was])
    for (statement, question), session in zip(spec["temporal"], rng.sample(range(n), len(spec["temporal"]))):
        ask("temporal", question, None, [plant(session, statement, "temporal")])
    for statements, question, answer in spec["multi"]:
        sessions = sorted(rng.sample(range(n), len(statements)))
        ask("multi-session", question, answer, [plant(s, t, "multi-session") for s, t in zip(sessions, statements)])
    for text in spec["noise"]:
        plant(rng.randrange(n), text, "noise")
    return plants, questions


def side_request(rng: random.Random, side: str) -> str:
    picks = {key: rng.sample(values, 2) for key, values in vocab.SIDE_SLOTS.items()}
    slots = {key: pair[0] for key, pair in picks.items()} | {key + "2": pair[1] for key, pair in picks.items()}
    return fill(rng.choice(vocab.SIDE[side]), slots)


def session_turns(rng: random.Random, spec: dict, topic: tuple[str, str], planted: list[tuple[int, dict]]) -> list[tuple]:
    """(speaker index, text, plant index or None) for one session: the opener, then the rest shuffled."""
    family, project = spec["family"], spec["project"]
    message, phrase = topic
    slot = lambda: slots_for(rng, project, phrase, spec["terms"])  # noqa: E731
    opener = fill(rng.choice(vocab.OPENING_WRAPS), {"text": message, "project": project})
    exchanges = []  # each: (person text, plant index or None, assistant text)
    carried = [p for p in planted if p[1]["kind"] not in ("noise", "instruction")]
    if carried and rng.random() < 0.35:
        index, item = rng.choice(carried)
        planted = [p for p in planted if p[0] != index]
        text = f"{item['text']} {opener}" if rng.random() < 0.5 else f"{opener} {item['text']}"
        said = item["text"] if rng.random() < 0.5 else None
        first = (text, index, long_reply(rng, family, slot(), message, said=said, opening=True))
    else:
        first = (opener, None, long_reply(rng, family, slot(), message, opening=True))
    for index, item in planted:
        statement, s = item["text"], slot()
        if item["kind"] == "noise":
            reply = (long_reply if rng.random() < 0.4 else medium_reply)(rng, family, s, statement)
            exchanges.append((statement, index, reply))
        elif rng.random() < (0.6 if item["kind"] == "instruction" else 0.45):  # said on its own
            if item["kind"] == "instruction":
                reply = rng.choice(vocab.INSTRUCTION_ACKS)
            elif rng.random() < 0.5:
                reply = rng.choice(vocab.ECHO_ACKS).format(echo=echo(statement))
            else:
                reply = rng.choice(vocab.ACKS)
            exchanges.append((lead_in(rng, statement), index, reply))
        else:  # said with a follow-up question, which the reply answers
            follow = fill(rng.choice(vocab.FOLLOWUPS[family]), s)
            text = f"{statement} {follow}" if rng.random() < 0.6 else f"{follow} {lead_in(rng, statement)}"
            said = statement if item["kind"] != "instruction" and rng.random() < 0.6 else None
            if rng.random() < 0.8:
                exchanges.append((text, index, long_reply(rng, family, s, follow, said=said)))
            else:
                exchanges.append((text, index, medium_reply(rng, family, s, follow)))
    for _ in range(rng.randint(1, 3)):
        roll, s = rng.random(), slot()
        if roll < 0.45:
            follow = fill(rng.choice(vocab.FOLLOWUPS[family]), s)
            text = rng.choice(vocab.THANKS) + " " + follow if rng.random() < 0.3 else follow
            exchanges.append((text, None, (long_reply if rng.random() < 0.5 else medium_reply)(rng, family, s, follow)))
        elif roll < 0.75:
            side = rng.choice(spec["sides"])
            project_side, topic_side, terms_side = vocab.SIDE_TERMS[side]
            request = side_request(rng, side)
            reply_slots = slots_for(rng, project_side, topic_side, terms_side)
            exchanges.append((request, None, long_reply(rng, vocab.SIDE_FAMILY.get(side, side), reply_slots, request)))
        else:
            exchanges.append((rng.choice(vocab.THANKS), None, fill(rng.choice(vocab.SHORT_REPLIES), s)))
    rng.shuffle(exchanges)
    turns = []
    for text, index, reply in [first] + exchanges:
        turns += [(0, text, index), (1, reply, None)]
    return turns


def conversation(spec: dict, rng: random.Random) -> dict:
    n = rng.randint(6, len(spec["topics"]))
    topics = [spec["topics"][i] for i in sorted(rng.sample(range(len(spec["topics"])), n))]
    dates = session_dates(rng, spec["start"], n)
    plants, questions = plant_plan(rng, spec, n)
    person = spec["person"]
    # assistant_speaker: memory/io.py stores those turns as memchat stores its own replies (role "assistant")
    conv = {"speaker_a": person, "speaker_b": "Assistant", "assistant_speaker": "Assistant"}
    dia_of, session_of = {}, {}
    for s in range(n):
        planted = [(i, p) for i, p in enumerate(plants) if p["session"] == s]
        conv[f"session_{s + 1}_date_time"] = locomo_date(dates[s])
        conv[f"session_{s + 1}"] = []
        for i, (who, text, index) in enumerate(session_turns(rng, spec, topics[s], planted), start=1):
            dia = f"D{s + 1}:{i}"
            conv[f"session_{s + 1}"].append({"speaker": (person, "Assistant")[who], "dia_id": dia, "text": text})
            if index is not None:
                dia_of[index], session_of[index] = dia, s
    qa = []
    for q in questions:
        item = {"question": q["question"], "answer": q["answer"], "evidence": [dia_of[i] for i in q["evidence"]],
                "category": CATEGORY[q["kind"]], "kind": q["kind"]}
        if q["kind"] == "temporal":
            moment = dates[session_of[q["evidence"][0]]]
            item["answer"] = f"{moment.day} {moment:%B} {moment.year}"
        if "stale_evidence" in q:
            item["stale_evidence"] = [dia_of[i] for i in q["stale_evidence"]]
        qa.append(item)
    return {"sample_id": spec["sample"], "conversation": conv, "qa": qa}


def build(part: str) -> list[dict]:
    people, seed = PARTS[part]
    return [conversation(spec, random.Random(f"{seed}-{spec['sample']}")) for spec in people]


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for part in PARTS:
        path = out / f"assistant-set-{part}.json"
        path.write_text(json.dumps(build(part), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write the three files to (default: data/)")
    for written in write(parser.parse_args().out):
        print(f"wrote {written} ({written.stat().st_size:,} bytes)")
