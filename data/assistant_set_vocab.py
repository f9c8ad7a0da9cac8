"""Conversational glue for the assistant-shaped evaluation set (data/make_assistant_set.py).

Openers and closers of assistant replies, acknowledgements of things the person said, and the
person's own unplanted messages: follow-ups on the session's topic, thanks, and side errands
(a recipe, a trip, an email) that every long chat with an assistant is full of. Slots as in
data/assistant_set_replies.py, plus {echo} (the person's words turned round: "I use" -> "you use").
"""

OPENERS = [
    "Good question. {Topic} is a common sticking point, and with {project} there are a few things worth checking.",
    "Thanks for the detail, that narrows it down a lot. Let's look at {topic} properly.",
    "Let's work through {topic} step by step, since it touches several parts of {project}.",
    "This comes up a lot, so here is how I would approach {topic} for {project}.",
    "Happy to help with {topic}. Short version first, then the details.",
    "That makes sense, and it is a good moment to look at {topic} before {project} grows further.",
    "Right, {topic}. There are a couple of ways to go about it, and the best one depends on how you use {project}.",
    "Nice progress on {project}! For {topic}, I'd split the problem into two parts.",
    "I can help with that. {Topic} is easier than it looks once the pieces are in the right order.",
    "OK, let's sort out {topic}. I'll assume the setup you described for {project} so far.",
]

FOLLOW_OPENERS = [  # replies to a follow-up or an errand: no session topic in them
    "Good question.", "Short answer: yes, but it's worth doing properly.", "It depends a bit, so here's how I'd think about it.",
    "Sure, here's how I'd go about it.", "Happy to help with that.", "That's a sensible thing to worry about.",
    "Yes, and it's easier than it sounds.", "Good idea. A few thoughts:", "Let's keep this practical.",
    "There are a couple of ways to do it.", "Fair question, people get this wrong a lot.", "",
]

ECHO_LEADS = [  # a sentence the reply opens with when it takes up what the person just said
    "Good to know that {echo}.", "Thanks for mentioning that {echo}, that helps.", "Noted: {echo}.",
    "That's useful context: {echo}.", "OK, so {echo}. I'll keep that in mind.", "Right, {echo}. That changes things a little.",
]

BRIDGES = [
    "Here is what I would check, roughly in order:",
    "A few concrete things to try:",
    "The checklist I would use:",
    "In practice that means:",
    "Some quick wins:",
    "To keep it manageable:",
]

BLOCK_LEADS = [
    "Something like this should work as a starting point:",
    "Here is a sketch you can adapt:",
    "For example:",
    "A minimal version looks like this:",
    "Roughly like this:",
]

CLOSERS = [
    "Let me know how it goes, and send me the output if it still misbehaves.",
    "If you tell me a bit more about {project}, I can make this more specific.",
    "Want me to turn this into a checklist you can keep next to {project}?",
    "Happy to go deeper on any of these steps.",
    "Try the first two points and see whether that is already enough.",
    "If anything here does not fit how you work, tell me and we'll adjust it.",
    "Shall I write the next step out in full?",
    "That should get you unstuck; the rest can wait until {project} needs it.",
    "",
]

ACKS = [
    "Noted, thanks for telling me.", "Got it, I'll keep that in mind.", "Understood.", "Thanks, that's useful to know.",
    "OK, noted.", "Good to know, I'll remember that.", "Got it.",
]
ECHO_ACKS = [
    "Noted: {echo}. I'll keep that in mind.", "Got it, {echo}. Thanks for letting me know.",
    "Understood, {echo}.", "OK, so {echo}. That's useful context.", "Thanks. I'll remember that {echo}.",
]
INSTRUCTION_ACKS = [
    "Understood, I'll do that from now on.", "Got it, I'll stick to that.", "Will do.",
    "Sure, noted for all future answers.", "OK, I'll follow that going forward.",
    "Of course. I'll keep to that unless you tell me otherwise.",
]

SHORT_REPLIES = [
    "Glad it helped. If the {term} acts up again, send me what you see and we'll dig in.",
    "Great, that's the main hurdle out of the way for {project}.",
    "You're welcome. Next time it might be worth writing down what fixed it, for future you.",
    "Good luck with it! Come back when you get to the {term2}.",
    "Nice. Small steps like that add up quickly on a project like {project}.",
    "Sounds like a plan. If you get stuck, paste the details and I'll take a look.",
    "Perfect. Let me know how the {term} behaves after a few days.",
]

LEADINS = ["", "", "", "By the way, ", "Oh, before I forget: ", "Quick note: ", "Also, ", "Unrelated, but ",
           "Side note: ", "For context, ", "FYI, "]

THANKS = [
    "Thanks, that worked.", "Perfect, that fixed it.", "Got it, I'll try that later.", "Great, thank you!",
    "That's really helpful, thanks.", "OK, that makes sense now.", "Brilliant, exactly what I needed.",
    "Cool, I'll give it a go.", "Thanks. I'll report back.",
]

OPENING_WRAPS = [
    "{text}", "Back on {project}. {text}", "Hi! {text}", "Me again. {text}", "{text} Any ideas?",
    "Hey, quick one about {project}. {text}", "{text} Where would you start?",
]

FOLLOWUPS = {
    "software": ["Could you show me how to write a test for the {term}?", "What's the cleanest way to log errors from the {term}?",
                 "Should I cache the {term} or is that overkill?", "How would you structure the code for the {term2}?",
                 "What's the safest way to deploy that change?", "How do I stop this breaking again after the next update?",
                 "Is there a way to profile the {term} to see what's slow?", "Can you explain what that query is actually doing?"],
    "academic": ["How should I structure the section on {term}?", "How do I cite a dataset properly?",
                 "What would an examiner likely ask about {term}?", "Can you help me tighten this paragraph on {term2}?",
                 "How many figures is too many for one chapter?", "How do I deal with a reviewer who wants a different method?",
                 "What's a realistic weekly writing target?", "How do I keep my references consistent?"],
    "fitness": ["How should I fit strength work around the {term}?", "What should I eat before a long session?",
                "My calves are tight after the {term2}. Anything I should change?", "How do I know if I'm overtraining?",
                "Should I train through a cold?", "How do I pace the {term}?", "What's a good taper?",
                "Is it worth getting a heart-rate strap?"],
    "home": ["What order should I do the {term} and the {term2} in?", "How do I find a decent electrician?",
             "Is it worth doing the {term} myself?", "What tools do I need for the {term}?",
             "How long should the plaster dry before painting?", "How do I keep the dust down while sanding?",
             "What should I ask the builder before signing?", "How do I budget for surprises?"],
    "writing": ["How do I make the {term} less flat?", "Should I cut the {term2} entirely?",
                "How do I write a better opening line?", "How much backstory is too much?",
                "How do I stay consistent with names and dates?", "What should I send to beta readers?",
                "How do I know when a draft is finished?", "Can you help me tighten the {term}?"],
    "garden": ["When should I plant out the {term}?", "How do I stop slugs eating the {term2}?",
               "Is it too late to sow more?", "What should I put in the empty bed?", "How often should I water in a heatwave?",
               "Should I make my own compost?", "What grows well in partial shade?", "How do I store the harvest?"],
    "planning": ["What should I book first for the {term}?", "How do I keep track of all the confirmations?",
                 "Is a deposit for the {term2} normally refundable?", "How much slack should I leave in the schedule?",
                 "How do I handle guests who don't reply?", "What's a sensible budget split?",
                 "Can you draft a checklist for the {term}?", "What's the usual etiquette for the {term2}?"],
    "business": ["How should I price the {term}?", "What's the best way to photograph the {term2}?",
                 "How do I handle a customer who wants a refund?", "Should I sell on a marketplace or only my own site?",
                 "How do I write a product description that sells?", "How much stock should I keep?",
                 "What should go in the newsletter?", "How do I keep the bookkeeping simple?"],
    "cooking": ["Can I make it ahead?", "What can I use instead of cream?", "How do I keep it from going soggy?",
                "How long does it keep in the fridge?", "Can I freeze it?", "What should I serve with it?"],
}

SIDE = {
    "cooking": ["What can I cook with {food} and {food2} that doesn't take long?",
                "I have guests coming. Any idea for a main with {food}?",
                "How do I make a proper {dish}?", "I'm bored of my usual lunches. Ideas with {food}?",
                "What's a good make-ahead {dish} for a busy week?"],
    "planning": ["I might take a long weekend in {city}. What's worth seeing?", "Can you help me plan two days in {city}?",
                 "What's the best way to get around {city} without a car?",
                  "We're thinking about {city} for a short break. Is it worth it?",
                 "How should I plan a day trip from {city}?"],
    "fitness": ["My back is stiff from sitting all day. Any stretches?", "Can you give me a short routine for the days I can't get out?",
                "How do I get back into exercise after a few weeks off?", "Is walking to work enough exercise?",
                "What's a good warm-up before {activity}?"],
    "writing": ["Can you help me word an email to my {relation} about {errand}?",
                "I need to write a short bio for {errand}. Can you help?",
                "How do I politely say no to {errand}?", "Can you help me write a thank-you note to my {relation}?",
                "What's a good way to ask my {relation} about {errand} without being awkward?"],
    "business": ["My {relation} wants to sell {food} at the market. How should they start?", "How do I ask for a raise?",
                 "What's a sensible way to split bills with a flatmate?", "How should I save for {errand}?",
                 "Is it worth paying for an accountant for a side income?"],
    "home": ["The bathroom grout is going black. How do I clean it?", "How do I fix a dripping tap?",
             "What's the best way to get rid of damp in a cupboard?", "How do I hang a heavy mirror on plasterboard?",
             "Any tips for decluttering a spare room?"],
    "garden": ["My basil keeps wilting on the windowsill. What am I doing wrong?", "What herbs are easy to grow indoors?",
               "How do I keep a balcony plant alive over a holiday?", "Which houseplants are hard to kill?"],
    "academic": ["How do I read a dense paper without getting lost?", "Any tips for giving a short talk?",
                 "How do I take better notes in lectures?", "How do I remember what I read?"],
}
SIDE_FAMILY = {"writing": "correspondence", "business": "money"}  # the replies' family, where it differs
SIDE_SLOTS = {
    "food": ["lentils", "chickpeas", "aubergine", "spinach", "mushrooms", "sweet potato", "tofu", "rice", "halloumi", "leeks",
             "courgettes", "beans", "squash", "cauliflower", "noodles"],
    "dish": ["risotto", "dal", "minestrone", "frittata", "shakshuka", "ramen", "curry", "pilaf", "tart", "stew"],
    "city": ["Ljubljana", "Ghent", "Bologna", "Tallinn", "Valencia", "Edinburgh", "Krakow", "Lyon", "Utrecht", "Trieste", "Bergen",
             "Seville", "Graz", "Riga"],
    "activity": ["a run", "a bike ride", "a swim", "a climbing session", "a long walk", "yoga"],
    "relation": ["landlord", "sister", "brother", "neighbour", "manager", "cousin", "flatmate", "aunt", "colleague"],
    "errand": ["the deposit", "a conference", "a birthday party", "a wedding invitation", "a charity run", "a new laptop",
               "the holiday dates", "a volunteering role", "a work trip"],
}

# The replies to side errands use these as their project, topic and terms.
SIDE_TERMS = {
    "cooking": ("your dinner plans", "a quick dinner", ["sauce", "side dish"]),
    "planning": ("the trip", "a short trip", ["itinerary", "booking"]),
    "fitness": ("your routine", "a simple routine", ["warm-up", "rest day"]),
    "writing": ("the message", "the message", ["opening line", "sign-off"]),
    "business": ("your finances", "the money side", ["budget", "savings"]),
    "home": ("the flat", "a fix around the flat", ["bathroom", "cupboard"]),
    "garden": ("your plants", "the plants", ["watering", "windowsill"]),
    "academic": ("your studies", "studying", ["notes", "reading"]),
}

# Lists and blocks a long reply may carry, by family (code only for software).
BULLETS = {
    "correspondence": ["Put the request in the first two lines.", "Give a concrete date for the next step.",
                       "Keep a copy of anything about money.",
                       "Use the person's name in the greeting.", "Cut every sentence that only apologises.",
                        "Read it aloud before sending."],
    "money": ["Write down a normal month's real numbers.", "Automate saving on payday.", "Keep one account per goal.",
              "Add annual bills divided by twelve to the monthly budget.", "Review the plan every few months.",
               "Agree shared rules before the first bill."],
    "software": ["Reproduce the bug with a test before changing any code in the {term}.",
                 "Pin dependency versions in the lock file and update them deliberately.",
                 "Add a request id to every log line so one request can be followed end to end.",
                 "Check the query count for a single request to the {term2}.",
                 "Keep the settings for development and production in separate files or environment variables.",
                 "Write down the rollback command before you deploy, not after.",
                 "Measure before optimising; guesses about slow code are usually wrong.",
                 "Make the error message say what to do next, not only what went wrong.",
                 "Back up the database daily and try a restore at least once."],
    "academic": ["Write the research question for each chapter in one sentence at the top of the file.",
                 "Keep a changelog of decisions about {term}, with dates and reasons.",
                 "Book a regular slot with your supervisor rather than waiting until a draft is ready.",
                 "Cite primary sources for every number you use.",
                 "Back up the thesis folder to two places, one of them off-site.",
                 "Draft the abstract early and rewrite it at the end.",
                 "Ask a friend outside your field to read the introduction.",
                 "Make every figure from a script you can rerun."],
    "fitness": ["Keep most runs at a conversational pace.",
                "Do two short strength sessions a week.",
                "Take a lighter week every third or fourth week.",
                "Practise race-day nutrition on long runs.",
                "Replace shoes after roughly 700 to 800 kilometres.",
                "Sleep at least seven hours, especially after hard sessions.",
                "Warm up for ten minutes before any fast work.",
                "Write down how each session felt, not only the numbers."],
    "home": ["Get three quotes for any trade work.",
             "Keep fifteen to twenty percent of the budget as contingency.",
             "Photograph pipes and cables before the walls are closed.",
             "Let plaster dry fully before painting.",
             "Order the {term2} early; long lead times set the schedule.",
             "Protect finished floors before the next trade arrives.",
             "Check local rules before touching anything structural.",
             "Keep a running list of snags to give the builder at the end."],
    "writing": ["Start the scene as late as possible and leave as early as possible.",
                "Give every character a want in every scene.",
                "Read the dialogue out loud.",
                "Cut filler words in the last pass: just, really, very, suddenly.",
                "Keep a notes file with names, dates and places so details stay consistent.",
                "Write the next session's first sentence before you stop.",
                "Let the draft rest a week before revising.",
                "Find two readers who will tell you where they got bored."],
    "garden": ["Test the soil pH before adding anything.",
               "Rotate crop families every year.",
               "Sow little and often for a steady harvest.",
               "Net the brassicas as soon as they go in.",
               "Water deeply twice a week rather than a little every day.",
               "Mulch bare soil to keep moisture in.",
               "Write sowing dates in a notebook.",
               "Collect rainwater from every roof you can."],
    "planning": ["Book the items with limited availability first.",
                 "Keep every confirmation in one folder with its reference number.",
                 "Leave a free half-day in the schedule for things that go wrong.",
                 "Check cancellation terms before paying a deposit.",
                 "Share one document with everyone involved.",
                 "Work backwards from the date with deadlines eight, four and one week before.",
                 "Have a plan B for anything that depends on the weather.",
                 "Write down who is responsible for each item."],
    "business": ["Work out your real cost per item, including your time.",
                 "Keep business and personal money in separate accounts.",
                 "Take product photos in natural light on a plain background.",
                 "Reply to every customer message within a day.",
                 "Set aside a share of each payment for tax.",
                 "Track which channels actually bring sales.",
                 "Raise prices on new items first to test demand.",
                 "Turn common questions into an FAQ page."],
    "cooking": ["Brown the onions longer than you think.",
                "Season in layers and taste at the end.",
                "Finish with something acidic.",
                "Keep a sharp knife; it is safer than a blunt one.",
                "Cook grains in bulk and keep them for three days.",
                "Label everything that goes in the freezer.",
                "Toast spices before adding liquid.",
                "Rest meat and roasted vegetables before serving."],
}

CODE = [
    "```python\ndef load_{name}(session, item_id: int):\n    \"\"\"Fetch one {term} with its related rows in a single query.\"\"\"\n"
    "    query = (\n        session.query({Name})\n        .options(joinedload({Name}.lines))\n        .filter({Name}.id == item_id)\n"
    "    )\n"
    "    item = query.one_or_none()\n    if item is None:\n        raise LookupError(f\"no {term} with id {item_id}\")\n"
    "    return item\n```",
    "```bash\n# run the app locally with the production settings, but a local database\nexport APP_ENV=production\n"
    "export DATABASE_URL=postgresql://localhost/{name}_dev\npip install -r requirements.txt\npytest -x -q tests/test_{name}.py\n"
    "gunicorn app:app --workers 3 --timeout 30 --log-level info\n```",
    "```sql\n-- how many {term} rows per day, and how long the slowest ones took\nSELECT date_trunc('day', created_at) AS day,\n"
    "       count(*) AS total,\n       max(duration_ms) AS slowest_ms\nFROM {name}_events\n"
    "WHERE created_at > now() - interval '30 days'\n"
    "GROUP BY 1\nORDER BY 1;\n```",
    "```python\nimport logging\nimport time\n\nlog = logging.getLogger(\"{name}\")\n\n\ndef timed(func):\n"
    "    def wrapper(*args, **kwargs):\n        started = time.perf_counter()\n        try:\n            return func(*args, **kwargs)\n"
    "        finally:\n            elapsed = (time.perf_counter() - started) * 1000\n"
    "            log.info(\"%s took %.1f ms\", func.__name__, elapsed)\n    return wrapper\n```",
    "```yaml\n# .github/workflows/tests.yml\nname: tests\non: [push, pull_request]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
    "    steps:\n      - uses: actions/checkout@v4\n      - uses: actions/setup-python@v5\n        with:\n"
    "          python-version: \"3.12\"\n"
    "      - run: pip install -r requirements.txt\n      - run: pytest -q\n```",
    "```dockerfile\nFROM python:3.12-slim\nWORKDIR /srv/{name}\nCOPY requirements.txt .\n"
    "RUN pip install --no-cache-dir -r requirements.txt\n"
    "COPY . .\nHEALTHCHECK CMD curl -f http://localhost:8000/health || exit 1\n"
    "CMD [\"gunicorn\", \"app:app\", \"--bind\", \"0.0.0.0:8000\"]\n```",
    "```javascript\nasync function fetch{Name}(id) {\n  const response = await fetch(`/api/{name}/${id}`);\n  if (!response.ok) {\n"
    "    throw new Error(`could not load {term} ${id}: ${response.status}`);\n  }\n  return response.json();\n}\n```",
    "```python\ndef test_{name}_rejects_empty_input(client):\n    response = client.post(\"/{name}\", json={})\n"
    "    assert response.status_code == 400\n    assert \"required\" in response.json()[\"error\"]\n```",
]

TABLES = {
    "fitness": ["| Day | Session | Notes |\n|---|---|---|\n| Mon | Rest or easy walk | mobility 15 min |\n"
    "| Tue | Intervals 6 x 800 m | 2 min jog between |\n"
                "| Wed | Easy 8 km | conversational |\n| Thu | Strength 30 min | single-leg work |\n"
                "| Fri | Easy 6 km | strides at the end |\n"
                "| Sat | Long run | start slow, fuel every 40 min |\n| Sun | Rest | |"],
    "home": ["| Item | Quote A | Quote B | Quote C |\n|---|---|---|---|\n| Labour | 2,400 | 2,150 | 2,800 |\n"
    "| Materials | 1,100 | 1,300 | included |\n"
             "| Waste removal | 180 | included | 220 |\n| Timeline | 3 weeks | 4 weeks | 2 weeks |"],
    "planning": ["| Weeks before | Task | Owner |\n|---|---|---|\n| 8 | Confirm the venue and the {term} | you |\n"
    "| 6 | Send invitations | you |\n"
                 "| 4 | Final numbers and dietary needs | partner |\n| 2 | Print the schedule | you |\n"
                 "| 1 | Call every supplier to confirm | you |"],
    "garden": ["| Bed | Spring | Summer | Autumn |\n|---|---|---|---|\n| 1 | broad beans | runner beans | green manure |\n"
    "| 2 | early potatoes | leeks | leeks |\n"
               "| 3 | lettuce, radish | courgettes | garlic |\n| 4 | onion sets | squash | overwinter onions |"],
    "academic": ["| Week | Chapter | Goal |\n|---|---|---|\n| 1-2 | Methods | full draft |\n| 3 | Results | figures final |\n"
    "| 4-5 | Results | text |\n"
                 "| 6 | Discussion | outline and first half |\n| 7 | All | read-through, fix references |"],
    "business": ["| Cost | Per item |\n|---|---|\n| Materials | 6.40 |\n| Firing and glaze | 2.10 |\n| Your time (40 min) | 12.00 |\n"
                 "| Packaging | 1.30 |\n| Platform fee | 2.25 |\n| Total | 24.05 |"],
    "writing": ["| Pass | Focus | Done when |\n|---|---|---|\n| 1 | Structure | every scene changes something |\n"
    "| 2 | Character | every choice is motivated |\n"
                "| 3 | Lines | no filler words left |\n| 4 | Proof | read aloud once |"],
    "cooking": ["| Day | Dinner | Uses |\n|---|---|---|\n| Mon | Lentil soup | batch from Sunday |\n"
    "| Tue | Grain bowl | roasted veg, tahini |\n"
                "| Wed | Stir-fry | rice from Monday |\n| Thu | Leftovers | |\n| Fri | Out | |"],
}
