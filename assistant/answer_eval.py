"""`memchat eval answers`: does a right recall become a right answer?

A case file (JSONL; data/answer-cases.jsonl is memchat's own set) holds personal facts, told in
different styles, with distractors about neighbouring things, and a question whose answer is in
one fact. Every case's facts and distractors are told to one fresh store, as a person tells them:
each a user turn in a conversation of its own, a day apart. Then each question is asked in a new
conversation through the same ChatService as `memchat ask`, so earlier questions and replies are
remembered as they would be. An answer counts when it states one of the accepted strings as whole
words (case and punctuation aside).

Cases with time (data/time-cases.jsonl) tell their statements at times relative to the moment the
eval runs, so the set never goes stale: `days_ago`, or `at` a phrase ("last week": the middle of
that window, as memory/timewindow.py reads it). Three kinds, reported by kind: `changed` (an old
statement and a newer one; right when the answer states the new value and no `reject`ed old one),
`when` (right when the answer names the event's day, as a date or a relative time, to within
WHEN_TOLERANCE), `window` (two similar statements, one inside the window the question names; right
when it states that one and not the other).

Instruction cases (data/instruction-cases.jsonl, `kind: instruction`) tell a lasting instruction or
preference ("From now on, give me distances in kilometres"), then ask something it must shape and
that does not resemble it ("How far is Paris from Lyon?"): right when the answer states an `expect`ed
word (if any) and no `reject`ed one. With `pin` (`--pin`), their instructions are pinned as standing
memories before the questions, so every prompt holds them; without it, they reach a prompt only if
recall finds them. `recalled` then says whether the instruction was in the prompt, pinned or recalled.
"""
from __future__ import annotations

import json
import re
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path

from assistant.chat import ChatService
from assistant.localtime import person_tz
from memory.errors import BadInput
from memory.memory import Memory
from memory.turn import NewTurn

DAY = 86_400.0
KINDS = ("fact", "changed", "when", "window", "instruction")
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
DAY_AND_MONTH = re.compile(rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?)\b", re.IGNORECASE)
WHEN_TOLERANCE = (3.0, 0.1)  # days: a `when` answer may be off by 3 days or 10 % of the time since, the larger


@dataclass
class Told:
    text: str
    days_ago: float | None = None  # when it was said, or
    at: str | None = None  # a phrase naming a window ("last week"): said in its middle


@dataclass
class Case:
    id: int
    style: str
    facts: list[Told]
    distractors: list[Told]
    question: str
    expect: list[str]
    kind: str = "fact"  # fact | changed | when | window | instruction
    reject: list[str] = field(default_factory=list)  # stating one of these makes the answer wrong
    event_days_ago: float | None = None  # `when`: the day the answer must name


def load_cases(path: Path) -> list[Case]:
    """Read and check a case file whole; a bad line is named, nothing is run."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the cases ({exc.__class__.__name__})") from None
    cases = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            case = _case(raw, number)
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            raise BadInput(f"{path}: line {number}: not a case ({exc.__class__.__name__}: {exc}); each line "
                           "needs facts or told (a list), question, and expect (a list) or event_days_ago") from None
        texts = [t.text for t in case.facts] + case.expect + case.reject
        judged_by = case.expect or case.kind == "when" or (case.kind == "instruction" and case.reject)
        if not case.facts or not judged_by or not all(isinstance(t, str) and t.strip() for t in texts):
            raise BadInput(f"{path}: line {number}: facts and expect must be non-empty lists of text")
        cases.append(case)
    if not cases:
        raise BadInput(f"{path}: no cases")
    return cases


def _case(raw: dict, number: int) -> Case:
    def told(item) -> Told:
        if isinstance(item, str):
            return Told(item)
        return Told(str(item["text"]), None if item.get("days_ago") is None else float(item["days_ago"]), item.get("at"))

    kind = str(raw.get("kind", "fact"))
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    facts = [told(t) for t in raw.get("told", raw.get("facts", []))]
    return Case(id=raw.get("id", number), style=str(raw.get("style", kind)), facts=facts,
                distractors=[told(t) for t in raw.get("distractors", [])], question=str(raw["question"]),
                expect=list(raw.get("expect", [])), kind=kind, reject=list(raw.get("reject", [])),
                event_days_ago=None if raw.get("event_days_ago") is None else float(raw["event_days_ago"]))


def _words(text: str) -> list[str]:
    """Words, case aside; dots, @ and - inside a word stay (1.78, mara.k@fastmail.com, E-58213)."""
    return re.findall(r"[\w@+-]+(?:\.[\w@+-]+)*", text.casefold())


def states(answer: str, expect: list[str]) -> bool:
    """Whether the answer says one of the accepted strings as whole words (case and punctuation aside)."""
    said = _words(answer)

    def same(word: str, want: str) -> bool:
        return word == want or word == want + "s"  # "Thursdays" states Thursday

    for accepted in expect:
        wanted = _words(accepted)
        for i in range(len(said) - len(wanted) + 1):
            if wanted and all(same(w, x) for w, x in zip(said[i : i + len(wanted)], wanted)):
                return True
    return False


def run_answer_eval(cases: list[Case], embedder, backend, service_options: dict, progress,
                    store: str = "faiss", now: float | None = None, tz: tzinfo | None = None,
                    pin: bool = False) -> dict:
    """Tell every fact, ask every question; the share answered, the share recalled, latency.
    `now` and `tz`: the moment the eval runs and the person's time zone (time cases are told relative
    to them); `pin`: the instruction cases' instructions are pinned (standing memories)."""
    now = time.time() if now is None else now
    tz = tz or person_tz()
    work = Path(tempfile.mkdtemp(prefix="memchat-answers-"))
    rows = []
    try:
        with Memory(work, embedder, store=store) as memory:
            start = now - (len(cases) + 1) * DAY
            told: list[NewTurn] = []
            for n, case in enumerate(cases):
                target = _target(case)
                for m, item in enumerate(case.facts + case.distractors):
                    created = _said_at(item, now, tz) if (item.days_ago is not None or item.at) else start + n * DAY + m * 60
                    told.append(NewTurn(text=item.text, role="user", conversation_id=f"told-{case.id}-{m}",
                                        created_at=created, meta={"case": case.id, "fact": m in target}))
            memory.remember_many(told, total=len(told), progress=progress)
            fact_ids = {}
            instructions = {c.id for c in cases if c.kind == "instruction"}
            for turn in memory.turns():
                if turn.meta.get("fact"):
                    fact_ids.setdefault(turn.meta["case"], set()).add(turn.id)
                    if pin and turn.meta["case"] in instructions:
                        memory.pin(turn.id)
            service = ChatService(memory, backend, **service_options)
            for n, case in enumerate(cases):
                started = time.perf_counter()
                reply = service.ask(case.question)
                seconds = time.perf_counter() - started
                memory.embed_deferred()  # the reply's vector, after the turn returned (as the faces do)
                given = set(reply.prompt.memory_ids + reply.prompt.pin_ids) if reply.prompt else set()
                rows.append({"id": case.id, "style": case.style, "kind": case.kind, "question": case.question,
                             "answer": reply.answer, "expect": case.expect, "stated": judged(case, reply.answer, now, tz),
                             "recalled": bool(fact_ids.get(case.id, set()) & given),
                             "first_token_ms": reply.timings.get("first_token_ms"), "seconds": round(seconds, 3),
                             "status": reply.status})
                progress("asking", n + 1, len(cases))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {**summarize(rows, backend), "pinned": pin}


def _target(case: Case) -> set[int]:
    """Which of the case's statements must reach the prompt: the newest of a changed fact, the one
    inside the window, otherwise every fact."""
    if case.kind == "changed":
        return {min(range(len(case.facts)), key=lambda i: case.facts[i].days_ago or 0.0)}
    if case.kind == "window":
        return {i for i, t in enumerate(case.facts) if t.at}
    return set(range(len(case.facts)))


def _said_at(item: Told, now: float, tz: tzinfo) -> float:
    if item.days_ago is not None:
        return now - item.days_ago * DAY
    from memory.timewindow import parse_window

    window = parse_window(item.at, now, tz)
    if window is None:
        raise BadInput(f"the case phrase {item.at!r} names no time window")
    return min((window.start + window.end) / 2, now - 3600)  # inside it, and in the past


def judged(case: Case, answer: str, now: float, tz: tzinfo) -> bool:
    if case.kind == "when":
        return names_day(answer, now - case.event_days_ago * DAY, now, tz)
    if case.kind == "instruction" and not case.expect:  # followed when nothing it rules out is said
        return bool(answer.strip()) and not states(answer, case.reject)
    return states(answer, case.expect) and not (case.reject and states(answer, case.reject))


def names_day(answer: str, event: float, now: float, tz: tzinfo) -> bool:
    """Whether the answer names the event's day, as a date ("Sun 22 Nov") or a relative time ("40
    days ago", "six weeks ago"), to within WHEN_TOLERANCE; read by dateparser, as the person would."""
    import dateparser
    from dateparser.search import search_dates

    base = datetime.fromtimestamp(now, tz).replace(tzinfo=None)
    settings = {"RELATIVE_BASE": base, "PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False}
    found = [when for _, when in search_dates(answer, languages=["en"], settings=settings) or []]
    # dateparser's search splits "Sat 14 Nov" into "Sat 14" (a day next month): read each day and
    # month named together whole as well.
    found += [when for phrase in DAY_AND_MONTH.findall(answer)
              if (when := dateparser.parse(phrase, languages=["en"], settings=settings)) is not None]
    event_day = datetime.fromtimestamp(event, tz).replace(tzinfo=None)
    allowed = max(WHEN_TOLERANCE[0], WHEN_TOLERANCE[1] * (now - event) / DAY)
    return any(abs((when - event_day).total_seconds()) / DAY <= allowed for when in found)


def summarize(rows: list[dict], backend) -> dict:
    def share(key: str, subset: list[dict]) -> float:
        return round(sum(r[key] for r in subset) / len(subset), 4) if subset else 0.0

    recalled = [r for r in rows if r["recalled"]]
    by_style = {style: {"stated": share("stated", group), "cases": len(group)}
                for style in sorted({r["style"] for r in rows})
                for group in [[r for r in rows if r["style"] == style]]}
    by_kind = {kind: {"stated": share("stated", group), "recalled": share("recalled", group), "cases": len(group)}
               for kind in KINDS for group in [[r for r in rows if r["kind"] == kind]] if group}
    first = [r["first_token_ms"] for r in rows if r["first_token_ms"] is not None]
    return {
        "backend": backend.name, "model": backend.model, "cases": len(rows),
        "stated": share("stated", rows), "recalled": share("recalled", rows),
        "stated_when_recalled": share("stated", recalled),
        "first_token_p50_ms": round(statistics.median(first), 1) if first else None,
        "seconds_p50": round(statistics.median(r["seconds"] for r in rows), 3) if rows else None,
        "by_style": by_style, "by_kind": by_kind, "rows": rows,
    }
