"""QQP: Quora-style question pairs, 1 if duplicates (about 40%) and 0 if not.

Each intent has templates that ask the same thing and related templates that
do not; non-duplicates reuse the template with another entity, ask a related
question, or switch intent. Labelled rows carry QQP's id/qid1/qid2 columns.
"""
from .common import Example, cap, pick_other, train_dev_test

FILES = train_dev_test()
LABELS = ("0", "1")


_QQP_SKILLS = ("Python", "Java", "French", "Spanish", "the guitar", "chess", "calculus",
               "machine learning", "photography", "public speaking", "the piano", "swimming",
               "statistics", "Japanese", "drawing", "C++", "German", "data science", "SQL",
               "web design", "poker", "yoga", "Excel", "JavaScript", "Mandarin", "physics",
               "video editing", "accounting", "Arabic", "salsa dancing")
_QQP_PLACES = ("Japan", "Canada", "India", "Brazil", "Germany", "London", "New York", "Paris",
               "Australia", "Mexico", "Bangalore", "Toronto", "Dubai", "Singapore", "Berlin",
               "Mumbai", "Sydney", "Chicago", "Italy", "Thailand", "Kerala", "Vancouver")
_QQP_THINGS = ("laptop", "phone", "camera", "bike", "car", "pair of headphones", "smartwatch",
               "tablet", "TV", "gaming console", "mattress", "printer")
_QQP_PAIRS = (("Python", "Java"), ("iPhone", "Android"), ("Mac", "PC"), ("Coke", "Pepsi"),
              ("MBA", "MS"), ("Windows", "Linux"), ("tea", "coffee"), ("cats", "dogs"),
              ("Python", "R"), ("renting", "buying a house"), ("Chrome", "Firefox"),
              ("Uber", "Lyft"), ("Kindle", "paper books"), ("Netflix", "Amazon Prime"),
              ("React", "Angular"), ("TCS", "Infosys"))
_QQP_WHY = (("cats", "lazy"), ("dogs", "loyal"), ("flights", "expensive"), ("textbooks", "expensive"),
            ("teenagers", "moody"), ("movies", "long"), ("people", "rude on the internet"),
            ("engineers", "underpaid"), ("hospitals", "expensive"), ("programmers", "introverted"),
            ("cities", "noisy"), ("exams", "stressful"), ("Mondays", "tiring"), ("hotels", "expensive"))
_QQP_BUSINESS = ("bakery", "blog", "YouTube channel", "startup", "podcast", "restaurant",
                 "clothing brand", "consulting firm", "food truck", "coffee shop", "gym",
                 "travel agency")
_QQP_DIFF = (("weather", "climate"), ("a virus", "a bacterium"), ("stocks", "bonds"),
             ("a CV", "a resume"), ("an LLC", "a corporation"), ("RAM", "storage"),
             ("a crocodile", "an alligator"), ("AI", "machine learning"), ("a loan", "a mortgage"),
             ("HTTP", "HTTPS"), ("a psychologist", "a psychiatrist"), ("baking soda", "baking powder"))

# intent -> (slot kind, duplicate templates, related but different templates)
_QQP_INTENTS = {
    "learn": ("skill",
              ("How do I learn {x}?", "What is the best way to learn {x}?",
               "How should I start learning {x}?", "What's the easiest way to learn {x}?",
               "How can I learn {x} on my own?"),
              ("Why should I learn {x}?", "How long does it take to learn {x}?",
               "Is it worth learning {x}?", "Where can I find a good teacher for {x}?")),
    "improve": ("skill",
                ("How can I get better at {x}?", "What are some ways to improve at {x}?",
                 "How do I improve my skills in {x}?"),
                ("What are the hardest parts of {x}?", "Why am I not improving at {x}?",
                 "Who is the best in the world at {x}?")),
    "visit": ("place",
              ("What are the best places to visit in {x}?", "Which places should I visit in {x}?",
               "What should I see when I travel to {x}?"),
              ("What is it like to live in {x}?", "How expensive is a trip to {x}?",
               "What is the best time of year to visit {x}?")),
    "live": ("place",
             ("What is it like to live in {x}?", "How is life in {x}?",
              "What are the pros and cons of living in {x}?"),
             ("What are the best places to visit in {x}?", "How do I move to {x}?",
              "Why is {x} so expensive to live in?")),
    "buy": ("thing",
            ("Which {x} should I buy?", "What is the best {x} to buy?", "Which {x} is worth buying?"),
            ("How do I fix my {x}?", "Where can I sell my old {x}?", "Why is my {x} so slow?")),
    "compare": ("pair",
                ("Which is better, {x} or {y}?", "Is {x} better than {y}?",
                 "{x} or {y}: which one is better?", "Which is better, {y} or {x}?"),
                ("Why do people hate {x}?", "What is the history of {x}?",
                 "Why is {y} more popular than {x}?")),
    "why": ("why",
            ("Why are {x} so {y}?", "What makes {x} so {y}?", "Why do {x} tend to be so {y}?"),
            ("Are {x} really {y}?", "Why aren't {x} {y} anymore?", "How can {x} become less {y}?")),
    "start": ("business",
              ("How do I start a {x}?", "What do I need to start a {x}?",
               "What are the steps to start a {x}?"),
              ("How do I close a {x}?", "How much does a {x} earn?", "Why do most {x}s fail?")),
    "diff": ("diff",
             ("What is the difference between {x} and {y}?", "How is {x} different from {y}?",
              "How do {x} and {y} differ?"),
             ("Which is more important, {x} or {y}?", "How are {x} and {y} related?",
              "What is {x}?")),
}


def _qqp_slots(rng, kind):
    if kind == "skill":
        return {"x": rng.choice(_QQP_SKILLS)}
    if kind == "place":
        return {"x": rng.choice(_QQP_PLACES)}
    if kind == "thing":
        return {"x": rng.choice(_QQP_THINGS)}
    if kind == "pair":
        x, y = rng.choice(_QQP_PAIRS)
        return {"x": x, "y": y}
    if kind == "why":
        x, y = rng.choice(_QQP_WHY)
        return {"x": x, "y": y}
    if kind == "business":
        return {"x": rng.choice(_QQP_BUSINESS)}
    x, y = rng.choice(_QQP_DIFF)
    return {"x": x, "y": y}


def _qqp_fill(rng, template, slots):
    text = cap(template.format(**slots))
    # Quora users are not careful typists.
    if rng.random() < 0.08:
        text = text.rstrip("?")
    if rng.random() < 0.05:
        text = text[:1].lower() + text[1:]
    return text


def make_example(rng, spec):
    """A question pair: 1 if both ask the same thing, QQP's roughly 40% duplicates."""
    intent = rng.choice(tuple(_QQP_INTENTS))
    kind, same, related = _QQP_INTENTS[intent]
    slots = _qqp_slots(rng, kind)
    t1 = rng.choice(same)
    q1 = _qqp_fill(rng, t1, slots)
    if rng.random() < 0.4:
        q2, label = _qqp_fill(rng, pick_other(rng, same, t1), slots), "1"
    else:
        label = "0"
        trap = rng.random()
        if trap < 0.4:
            # Same template, one entity changed: high word overlap, different question.
            other = _qqp_slots(rng, kind)
            while other == slots:
                other = _qqp_slots(rng, kind)
            if "y" in slots and rng.random() < 0.5 and kind == "pair":
                other = {"x": slots["x"], "y": pick_other(rng, [p[1] for p in _QQP_PAIRS], slots["y"])}
            q2 = _qqp_fill(rng, rng.choice(same), other)
        elif trap < 0.85:
            q2 = _qqp_fill(rng, rng.choice(related), slots)
        else:
            other_intent = pick_other(rng, tuple(_QQP_INTENTS), intent)
            okind, osame, _ = _QQP_INTENTS[other_intent]
            q2 = _qqp_fill(rng, rng.choice(osame), _qqp_slots(rng, okind))
    if rng.random() < 0.5:
        q1, q2 = q2, q1
    return (q1, q2), [Example((q1, q2), label, label)]


def layout_rows(spec, examples, rng):
    if not spec.labelled:
        return (["id", "question1", "question2"],
                [[str(i), ex.texts[0], ex.texts[1]] for i, ex in enumerate(examples)], False)
    ids = rng.sample(range(400000), len(examples))
    rows = [[str(i), str(2 * i + 1), str(2 * i + 2), ex.texts[0], ex.texts[1], ex.label]
            for i, ex in zip(ids, examples)]
    return ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], rows, False
