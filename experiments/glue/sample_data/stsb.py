"""STS-B: sentence pairs scored 0-5 for similarity (the one regression task).

Video/image captions and news headlines are changed by a chosen amount (a
detail, the object, the subject, a negation, the verb, everything), and the
score is the mean of 3-5 simulated ratings around the target. Rows carry
STS-B's genre/filename/year/old_index columns.
"""
from .common import Example, pick_other, train_dev_test

FILES = train_dev_test()
LABELS = None  # a regression task: scores, not label strings

# (canonical, surface alternatives)
_STS_PEOPLE = (("man", ("A man", "A guy")), ("woman", ("A woman", "A lady")),
               ("boy", ("A boy", "A young boy")), ("girl", ("A girl", "A little girl")),
               ("men", ("Two men", "Two guys")), ("child", ("A child", "A kid")),
               ("chef", ("The chef", "A cook")))
_STS_ANIMALS = (("dog", ("A dog", "A puppy")), ("cat", ("A cat", "A kitten")),
                ("horse", ("A horse", "A brown horse")), ("bird", ("A bird", "A small bird")))
# (verb key, progressive forms, objects or () for intransitive)
_STS_HUMAN_VERBS = (
    ("play", ("is playing", "plays"), ("a guitar", "a piano", "a flute", "the drums", "a violin")),
    ("cut", ("is cutting", "is slicing", "is chopping"), ("an onion", "a tomato", "a potato", "a carrot")),
    ("ride", ("is riding", "rides"), ("a horse", "a bike", "a motorcycle", "a skateboard")),
    ("read", ("is reading", "reads"), ("a book", "a newspaper", "a letter", "a magazine")),
    ("eat", ("is eating", "eats"), ("an apple", "a sandwich", "a banana", "a pizza")),
    ("drive", ("is driving", "drives"), ("a car", "a truck", "a bus")),
    ("dance", ("is dancing", "dances"), ()), ("swim", ("is swimming", "swims"), ()),
    ("run", ("is running", "runs", "is jogging"), ()), ("sing", ("is singing", "sings"), ()),
)
_STS_ANIMAL_VERBS = (
    ("run", ("is running", "runs"), ()), ("sleep", ("is sleeping", "sleeps"), ()),
    ("swim", ("is swimming", "swims"), ()),
    ("play", ("is playing with", "plays with"), ("a ball", "a toy", "a rope")),
    ("chase", ("is chasing", "chases"), ("a ball", "a stick", "a butterfly")),
)
_STS_PLACES = (("in a park", "at a park"), ("on the beach", "at the beach"),
               ("in the kitchen", "in a kitchen"), ("on a stage", "on stage"),
               ("in the street", "on the street"), ("in the snow",), ("in a field", "in the grass"))
_STS_COUNTRIES = ("France", "Germany", "Japan", "Brazil", "Canada", "India", "Kenya", "Mexico",
                  "Spain", "Egypt", "Chile", "Norway")
_STS_NEWS_VERBS = (("approves", ("approves", "passes", "backs")), ("rejects", ("rejects", "turns down")),
                   ("condemns", ("condemns", "criticizes", "slams")), ("signs", ("signs", "agrees to")),
                   ("delays", ("delays", "postpones")), ("announces", ("announces", "unveils")))
_STS_NEWS_OBJECTS = (("budget", ("new budget", "budget plan")), ("trade", ("trade deal", "trade pact")),
                     ("climate", ("climate plan", "climate policy")), ("tax", ("tax reform", "tax overhaul")),
                     ("election", ("election results", "vote results")), ("peace", ("peace talks", "peace plan")),
                     ("missile", ("missile test", "rocket launch")))
_STS_NEWS_SOURCES = (("main-news", "headlines", ("2013", "2014", "2015", "2016")),)
_STS_CAPTION_SOURCES = (("main-captions", "MSRvid", ("2012test", "2012train")),
                        ("main-captions", "images", ("2014", "2015")))


def _sts_caption(rng, c, negate=False):
    subj = rng.choice(c["subj"][1])
    form = c["verb"][1][0] if negate else rng.choice(c["verb"][1])
    if negate:
        form = form.replace("is ", "is not ", 1)
    words = [subj, form]
    if c["obj"]:
        obj = c["obj"]
        if rng.random() < 0.3 and obj.startswith("a "):
            obj = "the " + obj[2:]
        words.append(obj)
    if c["place"]:
        words.append(rng.choice(c["place"]))
    return " ".join(words) + "."


def _sts_new_caption(rng, animal=None):
    animal = rng.random() < 0.25 if animal is None else animal
    subj = rng.choice(_STS_ANIMALS if animal else _STS_PEOPLE)
    verb = rng.choice(_STS_ANIMAL_VERBS if animal else _STS_HUMAN_VERBS)
    return {"animal": animal, "subj": subj, "verb": verb,
            "obj": rng.choice(verb[2]) if verb[2] else "",
            "place": rng.choice(_STS_PLACES) if rng.random() < 0.4 else None}


def _sts_captions(rng):
    """Two captions and the similarity (0-5) they were built to have."""
    a = _sts_new_caption(rng)
    b = dict(a)
    level = rng.choice(("same", "same", "detail", "object", "subject", "negation", "verb",
                        "far", "unrelated", "unrelated"))
    people, verbs = (_STS_ANIMALS, _STS_ANIMAL_VERBS) if a["animal"] else (_STS_PEOPLE, _STS_HUMAN_VERBS)
    if level == "same":
        target = 4.8
    elif level == "detail":
        b["place"] = None if a["place"] else rng.choice(_STS_PLACES)
        target = 4.0
    elif level == "object" and a["obj"]:
        b["obj"] = pick_other(rng, a["verb"][2], a["obj"])
        target = 2.8
    elif level == "subject" or level == "object":
        b["subj"] = pick_other(rng, people, a["subj"])
        target = 3.0 if level == "subject" else 2.6
    elif level == "negation":
        return _sts_caption(rng, a), _sts_caption(rng, b, negate=True), 2.2
    elif level == "verb":
        b["verb"] = pick_other(rng, verbs, a["verb"])
        b["obj"] = rng.choice(b["verb"][2]) if b["verb"][2] else ""
        target = 1.4
    elif level == "far":
        b = _sts_new_caption(rng, a["animal"])
        b["place"] = a["place"]
        while b["subj"] == a["subj"] or b["verb"][0] == a["verb"][0]:
            b = _sts_new_caption(rng, a["animal"])
            b["place"] = a["place"]
        target = 0.8 if a["place"] else 0.6
    else:
        b = _sts_new_caption(rng, not a["animal"])
        target = 0.2
    return _sts_caption(rng, a), _sts_caption(rng, b), target


def _sts_headlines(rng):
    country = rng.choice(_STS_COUNTRIES)
    verb, obj = rng.choice(_STS_NEWS_VERBS), rng.choice(_STS_NEWS_OBJECTS)
    c2, v2, o2 = country, verb, obj
    level = rng.choice(("same", "same", "country", "verb", "object", "two", "unrelated"))
    if level == "country":
        c2, target = pick_other(rng, _STS_COUNTRIES, country), 2.4
    elif level == "verb":
        v2, target = pick_other(rng, _STS_NEWS_VERBS, verb), 1.8
    elif level == "object":
        o2, target = pick_other(rng, _STS_NEWS_OBJECTS, obj), 1.4
    elif level == "two":
        c2, o2, target = pick_other(rng, _STS_COUNTRIES, country), pick_other(rng, _STS_NEWS_OBJECTS, obj), 0.6
    elif level == "unrelated":
        c2 = pick_other(rng, _STS_COUNTRIES, country)
        v2, o2, target = pick_other(rng, _STS_NEWS_VERBS, verb), pick_other(rng, _STS_NEWS_OBJECTS, obj), 0.1
    else:
        target = 4.8
    s1 = f"{country} {rng.choice(verb[1])} {rng.choice(obj[1])}"
    s2 = f"{c2} {rng.choice(v2[1])} {rng.choice(o2[1])}"
    return s1, s2, target


def make_example(rng, spec):
    """A sentence pair scored like STS-B: the mean of 3-5 simulated 0-5 ratings."""
    if rng.random() < 0.65:
        s1, s2, target = _sts_captions(rng)
        source = rng.choice(_STS_CAPTION_SOURCES)
    else:
        s1, s2, target = _sts_headlines(rng)
        source = rng.choice(_STS_NEWS_SOURCES)
    raters = rng.choice((3, 4, 5, 5))
    ratings = [min(5, max(0, round(target + rng.gauss(0.0, 0.6)))) for _ in range(raters)]
    score = sum(ratings) / raters
    if rng.random() < 0.5:
        s1, s2 = s2, s1
    meta = {"genre": source[0], "filename": source[1], "year": rng.choice(source[2])}
    return (s1, s2), [Example((s1, s2), score, score, meta)]


def layout_rows(spec, examples, rng):
    header = ["index", "genre", "filename", "year", "old_index", "source1", "source2",
              "sentence1", "sentence2"]
    rows = []
    for i, ex in enumerate(examples):
        row = [str(i), ex.meta["genre"], ex.meta["filename"], ex.meta["year"],
               f"{rng.randint(0, 1499):04d}", "none", "none", ex.texts[0], ex.texts[1]]
        if spec.labelled:
            row.append(f"{ex.label:.3f}")
        rows.append(row)
    return header + (["score"] if spec.labelled else []), rows, False
