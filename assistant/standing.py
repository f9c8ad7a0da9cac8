"""Standing memories on the conversation side: which of the person's statements read as a lasting
instruction or preference (memchat then proposes pinning it, never pins it alone), and which pins a
prompt gets (a newer one that supersedes an older one replaces it).

The proposal is a small rule over a sentence's form, not a list of sentences: a clause proposes
when it is

- an imperative addressed to the assistant (a verb of answering, writing or suggesting, bare or
  after "please", "don't", "never"...; or "I want you to", "you should") that says it holds beyond
  this answer: a habitual marker ("always", "never", "from now on", "whenever", "by default", "in
  every answer") or a generic object ("keep answers short", "avoid exclamation marks in your
  responses"); a prohibition about style ("don't use American spelling"); a name to be called by;
  or a rule for a kind of request ("when I ask for a recipe, list the ingredients first");
  an opener may go before it ("FYI, ...", "Unrelated, but ..."), a quantified kind makes it general
  ("for every task you suggest", "anything you write"), as do a kind named first ("for recipes,
  list the ingredients first"), a rule for "any emails you draft ... should" and a verbless request
  for a kind ("temperatures in Celsius, please") count too;
- or the person's own preference or identity: "I prefer / I'd rather / I hate ..." about something
  general, "I love / like / enjoy" a kind named bare ("spicy food", "everything in dark mode"),
  "my favourite X is", "I'm a big X fan", "I'm vegetarian / allergic to / scared of / left-handed",
  "I don't eat pork", "my pronouns".

A sentence that asks something, or names a one-off time ("this week", "tomorrow", "for now"), does
not propose; nor does a clause about one thing at hand ("keep this short", "I prefer the blue one").
A habit that is no instruction ("I always forget my keys") has a habitual marker but neither form.
Measured on tests/data/standing-statements.jsonl, the planted statements of the person-and-assistant
set (data/assistant-set-*.json) and, for false proposals, on the person's turns of
data/sample-memories.jsonl and LoCoMo (docs/answers.md).
"""
from __future__ import annotations

import re

import numpy as np

from assistant.prompt import fit_pins
from memory.changes import supersessions
from memory.turn import Hit

MAX_PROPOSAL_CHARS = 400  # a longer message is pinned whole into every prompt: never proposed

_OPENERS = {"please", "kindly", "just", "also", "and", "so", "oh", "ok", "okay", "then", "now", "always", "never",
            "ever", "really", "simply", "generally", "by", "default", "going", "forward", "in", "future", "the",
            "from", "here", "on", "henceforth"}
_NEGATIONS = ("don't", "dont", "do not", "never", "stop", "avoid", "no more")
# Verbs by which a person tells an assistant how to answer (the imperative's head).
_INSTRUCTION_VERBS = set("""answer reply respond write format use give keep call address refer explain show tell list
include mention suggest recommend spell convert measure translate summarize summarise avoid stop add put cite quote
speak talk assume treat remind ask greet end start begin make skip say be provide offer round express present sign
describe check double-check stick limit prefix label number mark wrap highlight bold omit drop""".split())
# Verbs of leaving out: what they leave out is a kind even after "the" ("skip the pleasantries").
_OMISSION_VERBS = {"skip", "omit", "avoid"}
# Style verbs: forbidding one is lasting by nature ("don't use American spelling").
_STYLE_VERBS = set("use include add put mention suggest recommend apologize apologise repeat say swear round "
                   "abbreviate capitalize capitalise start begin end sign".split())
_HABITUAL = re.compile(
    r"\b(always|never|from now on|from here on|going forward|in (?:the )?future|henceforth|every time|each time|"
    r"whenever|by default|as a rule|any ?more|no longer|ever|unless i (?:say|ask)|when i ask|"
    r"in (?:every|all|each|any) (?:\w+ )?(?:answers?|repl(?:y|ies)|responses?|chats?|conversations?|messages?))\b")
_LASTING = re.compile(r"\b(always|never|from now on|from here on|going forward|in (?:the )?future|henceforth|by default)\b")
_ONE_OFF = re.compile(
    r"\b(today|tonight|tomorrow|yesterday|this (?:time|week|weekend|morning|afternoon|evening|month|once|one)|"
    r"for now|right now|at the moment|(?:next|last) (?:week|month|monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday)|on (?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))\b")
# A clause about one thing at hand: "keep this short", "I prefer the blue one", "the second paragraph".
_AT_HAND = re.compile(r"\b(this|that|these|those|it|the (?:\w+ )?(?:one|version|option|paragraph|draft|letter))\b")
_ADDRESSED = re.compile(r"\b(i (?:want|need) you to|i(?:'d| would) (?:like|love|rather|prefer) (?:it if )?you|you should|"
                        r"you must|make sure (?:you|to))\b")
_NAMING = re.compile(r"\b(call me|address me as|refer to me as|my name is .+, not)\b")
_RULE_FOR_REQUESTS = re.compile(r"\b(when(?:ever)?|every time|each time|if) (?:i|you) \w+")
# A kind of thing framed first, then what to do with it: "for recipes, list the ingredients first".
_FOR_A_KIND = re.compile(r"(?:for|in|with) (?:any |all |my )?[a-z-]+s$")
# Things of a kind named by a quantifier: "every task you suggest", "any times", "anything you write".
_QUANTIFIED = re.compile(
    r"\b(?:(?:every|each|any|all) (?!the\b|of\b|my\b|your\b|time\b|other\b)[a-z-]+(?: [a-z-]+)? (?:you|i)\b|"
    r"(?:anything|everything|whatever) (?:you|i)\b|(?:every|each|any|all) (?:answers?|repl(?:y|ies)|responses?|messages?)\b)")
# A rule put as what things of a kind should be: "any emails you draft for me should be formal".
_RULE_FOR_KIND = re.compile(r"^(?:any|all|every|each) (?!of\b)[a-z -]*?\byou\b[a-z -]*?\b(?:should|must|need to|have to)\b")
# A request without a verb, for things of a kind: "temperatures in celsius, please", "portions for two by default".
_VERBLESS = re.compile(r"^(?:[a-z-]+ )?[a-z-]+s (?:in|for|as|at|with|under|over) ")
# What a verbless "X in Y, please" asks for as a standing matter: a unit, a language, a format.
_FORMS = re.compile(
    r"\b(?:celsius|fahrenheit|metric|imperial|kilo\w*|miles|grams|kg|pounds|ounces|litres|liters|cups|euros?|dollars|"
    r"pounds|yen|utc|cet|est|pst|english|british|american|french|german|spanish|italian|dutch|portuguese|"
    r"japanese|chinese|bullet points?|plain text|markdown|tables?|lists?|numbers?|digits|words|24-hour|12-hour)\b")
# The person's own preference, about something general (not "the blue one").
_PREFERENCE = re.compile(
    r"\bi(?:'d| would)? (?:really |much |strongly |generally |absolutely |just |always )?(?:prefer|rather|hate|dislike|"
    r"can't stand|cannot stand|can't handle|cannot handle|can't bear|like|love|adore|enjoy|want|"
    r"do not like|don't like)\b")
# Liking or wanting is a preference about a kind only with a bare or quantified object ("I love
# spicy food", "I like everything in dark mode"), not "I love this" / "I want the blue one" / "I
# like your idea"; "want" only with "always" / "never" ("I always want a window seat").
_WEAK_PREFERENCE = re.compile(r"\b(?:like|love|adore|enjoy|want)$")
_FAVOURITE = re.compile(r"\bmy (?:all-time )?favou?rite (?!memory|memories|moment|part|thing|day|time|person|people)(?:\w+ ){0,2}(?:is|are)\b|\b(?:is|are) my (?:all-time )?favou?rite\b|"
                        r"\b(?:i'm|i am) (?:a |an )?(?:big |huge |massive |lifelong )?(?:\w+ )?fan\b")
_COMPARED = re.compile(r"\b(?:to|over|rather than|instead of)\b|\bthe \w+er the better\b")
# What the person is, eats or cannot have: it holds for every answer that touches it.
_IDENTITY = re.compile(
    r"\b(?:i'm|i am)(?: a| an| strictly| mostly)? (?:vegetarian|vegan|pescatarian|gluten[- ]free|lactose[- ]intolerant|"
    r"diabetic|coeliac|celiac|teetotal|kosher|halal|allergic to|intolerant to|colou?r[- ]?blind|dyslexic|"
    r"a beginner|new to|not a native|hard of hearing|(?:scared|afraid|terrified) of (?!what|how|losing|being|you|him|her|them|it\b)|"
    r"left-handed|right-handed|"
    r"an early bird|a night owl|a morning person|a night person)\b"
    r"|\bi (?:don't|do not|can't|cannot|never|won't) (?:eat|drink|have|touch)\b|\bmy pronouns are\b")
_DETERMINERS = {"the", "this", "that", "these", "those", "a", "an", "one", "two", "three", "four", "five", "six",
                "seven", "eight", "nine", "ten", "some", "few", "several"}
_NOT_PLURAL = re.compile(r"(?:ss|us|is|ous|ics|'s)$")
_NOT_NOUNS = {"always", "sometimes", "perhaps", "unless", "less", "yes", "thanks", "does", "was", "has", "towards"}
# An object that is a kind when it has none of these in front ("jazz", "spicy food", "everything").
_NOT_BARE = {"the", "this", "that", "these", "those", "a", "an", "it", "its", "it's", "you", "your", "him", "her",
             "them", "his", "their", "our", "how", "what", "when", "where", "who", "if", "being", "seeing", "talking",
             "hearing", "reading", "to", "that's", "having", "getting", "knowing", "and", "so", "too", "more", "each",
             "is", "are", "was", "were", "be", "been", "about", "of", "for", "with", "at", "in", "on", "from", "by",
             "because", "as", "than", "us", "me", "myself", "doing", "going", "there", "here", "why", "which", "some",
             "one", "my", "all", "very", "much", "lots", "most", "seeing", "watching", "working", "spending"}
_PERSONS = {"he", "she", "you", "they", "him", "her", "them", "who"}  # "he is my favourite"
_SUBJECTS = {"it", "he", "she", "that", "which", "who", "what", "this", "one"}


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'").replace("\u2018", "'")).strip().lower()


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]


def _clauses(sentence: str) -> list[str]:
    return [c.strip() for c in re.split(r"[,;:()]|\s(?:so|but|because)\s|\s-\s", sentence) if c.strip()]


def _words(clause: str) -> list[str]:
    return re.findall(r"[a-z][a-z'-]*|\d+", clause)


def _imperative(words: list[str]) -> tuple[str | None, bool]:
    """The imperative's verb at the clause's head (after "please", "always", "don't ever" ...), and
    whether it is negated; (None, False) for a clause that does not start with one."""
    negated = False
    i = 0
    while i < len(words):
        word = words[i]
        if " ".join(words[i:i + 2]) == "do not":
            negated, i = True, i + 2
        elif word in ("don't", "dont", "never"):
            negated, i = True, i + 1
        elif word in ("stop", "avoid") and i + 1 < len(words) and words[i + 1].endswith("ing"):
            stem = words[i + 1][:-3]  # "stop apologizing", "stop using": the gerund is the verb
            return (stem if stem in _INSTRUCTION_VERBS else stem + "e"), True
        elif " ".join(words[i:i + 2]) in ("can you", "could you", "would you", "will you"):
            i += 2  # a request put as a question: "could you always give prices in euros?"
        elif word in _OPENERS:
            i += 1
        else:
            return (word if word in _INSTRUCTION_VERBS else None), negated
    return None, negated


def _generic_object(words: list[str]) -> bool:
    """A plural without an article or a number ("answers", "your responses"): things of a kind. A
    word in -s after a noun phrase or a pronoun is its verb ("the timer ends"), not a plural."""
    for i, word in enumerate(words):
        before = words[i - 1] if i else ""
        if len(word) <= 3 or not word.endswith("s") or _NOT_PLURAL.search(word) or word in _NOT_NOUNS:
            continue
        if before in _DETERMINERS or before in _SUBJECTS or (i > 1 and words[i - 2] in _DETERMINERS):
            continue
        return True
    return False


def _prefers_in_general(sentence: str, habitual: bool) -> bool:
    """The person's preference about things of a kind ("I prefer short, direct answers", "I love
    spicy food", "my favourite genre is science fiction"), not about one thing at hand ("I prefer
    the blue one", "I love this", "I'd like a table for two")."""
    for found in _PREFERENCE.finditer(sentence):
        rest = sentence[found.end():]
        what = re.split(r"\s(?:so|but|because|and then)\s|;", rest)[0]
        if _AT_HAND.search(what):
            continue
        first = _words(re.split(r",", what)[0])
        if re.search(r"(?:'d|would) like$", found.group(0)):  # "I'd like answers in French", not "I'd like to"
            general = first[:1] != ["to"] and (_generic_object(_words(what)) or re.search(r"\byou\b", what))
        elif re.search(r"(?:'d|would) (?:love|adore|enjoy|want)$", found.group(0)):  # a wish, unless about answers
            general = first[:1] != ["to"] and re.search(r"\b(?:you|answers?|repl(?:y|ies)|responses?)\b", what) is not None
        elif found.group(0).endswith("want"):
            general = habitual  # "I always want a window seat"; "I want the report" is a request
        else:
            bare = bool(first) and first[0] not in _NOT_BARE
            if _WEAK_PREFERENCE.search(found.group(0)):  # "I like my answers short", not "I love how art lets us"
                general = bare or (first[:1] == ["my"] and _generic_object(first))
            else:
                general = (bare or habitual or _generic_object(_words(what)) or re.search(r"\byou\b", what) is not None
                           or _COMPARED.search(what) is not None)
        if general:
            return True
    favourite = _FAVOURITE.search(sentence)
    if favourite is None or re.search(r"\bfan of (?:you|yours|your|his|her|their|him|them)\b", sentence):
        return False  # "I'm a big fan of your work" is praise
    before = _words(sentence[:favourite.start()])
    return not _AT_HAND.search(sentence[:favourite.start()]) and not (before and before[-1] in _PERSONS)


def _clause_proposes(clause: str, habitual: bool, asked: bool, lasting: bool) -> bool:
    words = _words(clause)
    if not words:
        return False
    if _IDENTITY.search(clause) or _NAMING.search(clause) or _RULE_FOR_KIND.search(clause):
        return True
    if (_VERBLESS.match(clause) and _generic_object(words[:2]) and words[0] not in _SUBJECTS
            and (lasting or (asked and _FORMS.search(clause)))):
        return True
    if habitual and words[0] == "no" and len(words) > 1:
        return True  # a verbless prohibition: "no emojis, ever"
    verb, negated = _imperative(words)
    addressed = verb is not None or _ADDRESSED.search(clause) is not None
    quantified = _QUANTIFIED.search(clause) is not None
    if not addressed or (_AT_HAND.search(clause) and not (_LASTING.search(clause) or quantified)):
        return False  # "keep this short"; but "keep it brief from now on", "convert any times to it"
    if habitual or quantified or _generic_object(words[1:]):
        return True
    if verb in _OMISSION_VERBS:  # "skip the pleasantries", "skip the medical disclaimers"; not "skip the first two steps"
        after = words[words.index(verb) + 1:] if verb in words else []
        after = after[1:] if after[:1] == ["the"] else after
        kind = after[:2] if len(after) > 1 and not _NOT_PLURAL.search(after[0]) and not after[0].endswith("s") else after[:1]
        if kind and len(kind[-1]) > 3 and kind[-1].endswith("s") and not _NOT_PLURAL.search(kind[-1]) \
                and not set(kind) & (_DETERMINERS | {"first", "last", "next", "other"}):
            return True
    return negated and verb in _STYLE_VERBS


def reads_as_standing(text: str) -> bool:
    """Whether `text` reads as a lasting instruction or preference, worth proposing as a standing
    memory (see the module's docstring); a question, a one-off or a long message never does."""
    if not text or len(text) > MAX_PROPOSAL_CHARS:
        return False
    for sentence in _sentences(_normalise(text)):
        if _ONE_OFF.search(sentence):
            continue
        habitual = _HABITUAL.search(sentence) is not None
        if sentence.endswith("?") and not (habitual and re.match(r"(?:can|could|would|will) you\b", sentence)):
            continue
        clauses = _clauses(sentence)
        framed = _RULE_FOR_REQUESTS.match(sentence) or (clauses and _FOR_A_KIND.fullmatch(clauses[0]))
        if framed and len(clauses) > 1 and _imperative(_words(clauses[1]))[0]:
            return True  # "when I ask for a recipe, list the ingredients first"; "for recipes, list ..."
        asked = re.search(r"\bplease\b", sentence) is not None
        lasting = _LASTING.search(sentence) is not None
        if _prefers_in_general(sentence, habitual) or any(_clause_proposes(c, habitual, asked, lasting) for c in clauses):
            return True
    return False


def standing_memories(memory) -> tuple[list[Hit], list[int]]:
    """The standing memories a prompt gets, newest pin first, as hits: a pin that a newer pinned
    statement supersedes (memory/changes.py: the same thing, a change said) is left out, so "from
    now on, give me distances in miles" replaces "always give me distances in kilometres". Also
    every pinned turn's id, superseded ones included: none of them is recalled as a note."""
    pinned = memory.pins()
    hits = [Hit(turn, 0.0, {"pinned": 1}) for turn in pinned]
    replaced = supersessions(hits, memory.vectors(turn.id for turn in pinned)) if len(hits) > 1 else {}
    return [h for h in hits if h.turn.id not in replaced], [turn.id for turn in pinned]


def pins_for_prompt(memory, message: str, budget: int, count_tokens, now: float | None = None,
                    tz=None) -> tuple[list[Hit], frozenset[int]]:
    """The standing memories a prompt about `message` holds within `budget` tokens, and the pinned
    turns that recall must not give as notes: those in the prompt and those a newer pin replaced.
    All of them when they fit, else the ones nearest the message in meaning first (a person with
    many standing memories asks about one thing at a time; "I'm vegetarian" for a recipe); a pin
    left out for room stays recallable as a note (with a budget of 0, none is in the prompt and
    none is recalled, as before pins had a budget). `budget`: prompt.pin_room, the room left."""
    pins, pinned = standing_memories(memory)
    if budget <= 0:
        return [], frozenset(pinned)
    kept = fit_pins(pins, budget, count_tokens, now, tz)
    if len(kept) < len(pins):
        kept = fit_pins(_nearest_first(memory, message, pins), budget, count_tokens, now, tz)
    shown = {h.turn.id for h in pins}
    return kept, frozenset([*(h.turn.id for h in kept), *(i for i in pinned if i not in shown)])


def _nearest_first(memory, message: str, pins: list[Hit]) -> list[Hit]:
    # Through the provider watch, as recall asks: a provider that is down answers None at once
    # (keep the newest first) instead of holding the message for its timeout.
    query = memory.provider.query_encoder(memory.embedder)(message)
    if query is None:
        return pins
    vectors = memory.vectors(h.turn.id for h in pins)
    def similarity(hit: Hit) -> float:
        vector = vectors.get(hit.turn.id)
        return float(np.dot(vector, query)) if vector is not None else -1.0
    return sorted(pins, key=similarity, reverse=True)  # stable: equal ones stay newest first
