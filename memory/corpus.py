"""A generated corpus of personal-assistant turns and questions, for `memchat bench`.

Sentences are composed from a few hundred words of everyday vocabulary (people, places, plans,
food, work, health) with a seeded RNG, so any size up to millions is reproducible and distinct.
Queries are phrased as questions about the same topics, never copies of stored turns, so the
search path does the same work it does for a real user.
"""
from __future__ import annotations

import math
import random

PEOPLE = """Anna Ben Carla David Elena Farid Grace Hiro Ines Jamal Kofi Lena Marco Nadia Omar Priya
Quentin Rosa Sami Tara Umar Vera Wen Ximena Yusuf Zoe""".split()
RELATIONS = """sister brother mother father cousin aunt uncle neighbour colleague manager friend
daughter son grandmother partner roommate dentist doctor teacher landlord""".split()
PLACES = """Lisbon Berlin Nairobi Kyoto Toronto Lima Oslo Porto Seoul Austin Dublin Marseille Hanoi
Krakow Quito Cairo Denver Perth Bergen Tbilisi the lake the mountains the office the gym the library
the market the clinic the park the beach the airport""".split(" ")
ACTIVITIES = """hiking cycling swimming painting baking climbing running gardening knitting chess
pottery surfing sailing yoga photography birdwatching camping fishing skiing dancing""".split()
FOODS = """ramen tacos lasagna curry dumplings paella sushi falafel pho risotto pancakes bagels
kimchi empanadas moussaka pierogi""".split()
THINGS = """passport laptop bike keys umbrella guitar camera notebook charger headphones tent
blender jacket telescope""".split()
WORK = """the quarterly report the budget review the client demo the hiring plan the product launch
the database migration the team offsite the security audit the design review the invoice""".split("\n")
WORK = [w for line in WORK for w in line.split(" the ") if w]
WHEN = """on Monday|on Tuesday|on Wednesday|on Thursday|on Friday|this weekend|next week|last month|
in May|in June|in August|in October|in December|tomorrow morning|tonight|at noon|after work""".replace("\n", "").split("|")
FEELINGS = """excited nervous relieved tired happy worried proud curious annoyed grateful""".split()

TEMPLATES = [
    "My {rel} {person} moved to {place} {when} and is {feeling} about it.",
    "I went {act} with {person} near {place} {when}.",
    "Remind me that {person} recommended the {food} place in {place}.",
    "I left my {thing} at {person}'s flat {when}.",
    "{person} from work is leading {work} and it is due {when}.",
    "I started learning {act} {when} because my {rel} loves it.",
    "We had {food} for dinner with {person} {when}; it was the best in {place}.",
    "My appointment with the {rel} is {when}, I feel {feeling}.",
    "I need to buy a new {thing} before the trip to {place} {when}.",
    "{person} said the meeting about {work} moves to {when}.",
    "Note to self: {person} is allergic to {food}.",
    "I promised my {rel} I would call {when} about the visit to {place}.",
    "Sure, I will keep in mind that you prefer {food} over {food2} and enjoy {act}.",
    "You mentioned that {person} lives in {place} and works on {work}.",
]
QUESTIONS = [
    "Where did my {rel} move?",
    "Who did I go {act} with?",
    "What food did {person} recommend?",
    "Where did I leave my {thing}?",
    "When is {work} due?",
    "Why did I start {act}?",
    "What is {person} allergic to?",
    "When is my appointment with the {rel}?",
    "What do I need before going to {place}?",
    "What did {person} say about {work}?",
    "Which city does {person} live in?",
    "What did we eat with {person}?",
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        person=rng.choice(PEOPLE), rel=rng.choice(RELATIONS), place=rng.choice(PLACES),
        act=rng.choice(ACTIVITIES), food=rng.choice(FOODS), food2=rng.choice(FOODS),
        thing=rng.choice(THINGS), work=rng.choice(WORK).strip(), when=rng.choice(WHEN).strip(),
        feeling=rng.choice(FEELINGS),
    )


def turns(count: int, seed: int = 7) -> list[str]:
    """`count` distinct turns (a serial number is appended only if the vocabulary runs out)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        text = _fill(rng.choice(TEMPLATES), rng)
        if text in seen:
            text = f"{text} (note {len(out)})"
        seen.add(text)
        out.append(text)
    return out


def questions(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [_fill(rng.choice(QUESTIONS), rng) for _ in range(count)]


# Lengths of real chat turns: LoCoMo's 1,451 dev turns have median 119 characters, p10 57, p90 221.
CHAT_MEDIAN_CHARS = 120
CHAT_SIGMA = 0.55  # of the log-normal: p10 ≈ 59, p90 ≈ 243 characters


def chat_turns(count: int, seed: int = 13) -> list[str]:
    """Turns shaped like real chat: generated sentences joined up to a length drawn from a
    log-normal fitted to real conversations, so import speed is measured on what people import."""
    rng = random.Random(seed)
    sentences = iter(turns(count * 4, seed=seed))
    out = []
    for _ in range(count):
        target = CHAT_MEDIAN_CHARS * math.exp(rng.gauss(0.0, CHAT_SIGMA))
        text = next(sentences)
        while len(text) < target:
            longer = text + " " + next(sentences)
            if abs(len(longer) - target) > abs(len(text) - target):
                break  # the nearest length to the target, from below or above
            text = longer
        out.append(text)
    return out
