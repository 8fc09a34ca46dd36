"""MRPC: news-style sentence pairs, 1 if paraphrases and 0 if not.

One event (earnings, an official's decision, arrests, a deal, a quote) is
realised in four surface forms; non-paraphrases change one fact (a number, a
name, a day, the direction, the two parties) or add a clause. Train and dev
keep the UTF-8 BOM of the Microsoft source file; test does not.
"""
from .common import (CITIES, COMPANIES, DAYS, NAMES, SURNAMES, Example, cap, pick_other, random_person,
                     train_dev_test)

FILES = train_dev_test()
LABELS = ("0", "1")

_METRICS = ("revenue", "net income", "sales", "profit", "operating profit", "earnings")
_QUARTERS = ("first", "second", "third", "fourth")
_UP = ("rose", "climbed", "increased", "jumped", "grew")
_DOWN = ("fell", "dropped", "declined", "slipped", "decreased")
_UP_NOUN = ("increase", "rise", "gain")
_DOWN_NOUN = ("decline", "drop", "fall")
_TITLES = ("Governor", "Senator", "Mayor", "Judge", "Chancellor", "Commissioner")
_BILLS = ("the budget bill", "a measure to raise the minimum wage", "the new tax plan",
          "a bill on school funding", "the highway spending plan", "a ban on smoking in bars",
          "the pension reform")
# (past, base, synonym past, antonym index or None)
_OFFICIAL_VERBS = (("signed", "sign", "signed", 1), ("vetoed", "veto", "blocked", 0),
                   ("approved", "approve", "backed", 3), ("rejected", "reject", "turned down", 2),
                   ("endorsed", "endorse", "supported", 5), ("criticized", "criticize", "attacked", 4))
_REASONS = ("after a protest turned violent", "in a drug raid", "following a string of burglaries",
            "during a football match", "after a night of looting")
_STATEMENTS = (("the plan will create {n} jobs", "the plan will cut {n} jobs"),
               ("sales will improve in the second half", "sales will weaken in the second half"),
               ("the company expects to hire {n} workers", "the company expects to lay off {n} workers"),
               ("the talks with the union were productive", "the talks with the union broke down"))


def _pct(rng):
    return str(rng.randint(2, 40)) if rng.random() < 0.5 else f"{rng.randint(1, 25)}.{rng.randint(1, 9)}"


def _mrpc_event(rng):
    kind = rng.choice(("earnings", "official", "arrest", "deal", "quote"))
    s = {"kind": kind}
    if kind == "earnings":
        s.update(c=rng.choice(COMPANIES), metric=rng.choice(_METRICS), up=rng.random() < 0.5,
                 pct=_pct(rng), q=rng.choice(_QUARTERS))
    elif kind == "official":
        s.update(title=rng.choice(_TITLES), first=rng.choice(NAMES), last=rng.choice(SURNAMES),
                 verb=rng.randrange(len(_OFFICIAL_VERBS)), obj=rng.choice(_BILLS),
                 day=rng.choice(DAYS), city=rng.choice(CITIES), neg=False)
    elif kind == "arrest":
        s.update(n=rng.randint(3, 60), city=rng.choice(CITIES), day=rng.choice(DAYS),
                 reason=rng.choice(_REASONS))
    elif kind == "deal":
        a = rng.choice(COMPANIES)
        s.update(a=a, b=pick_other(rng, COMPANIES, a), x=rng.choice((45, 120, 310, 640, 980, 1200, 2500)))
    else:
        s.update(name=random_person(rng), stmt=rng.randrange(len(_STATEMENTS)), bad=False,
                 n=rng.choice((150, 200, 350, 500, 1200, 3000)))
    return s


def _mrpc_mutate(rng, s):
    """Change one fact so the sentences no longer mean the same thing."""
    s = dict(s)
    kind = s["kind"]
    if kind == "earnings":
        what = rng.choice(("pct", "up", "q", "c"))
        if what == "pct":
            s["pct"] = pick_other(rng, [_pct(rng) for _ in range(4)] + [str(int(float(s["pct"])) + 3)], s["pct"])
        elif what == "up":
            s["up"] = not s["up"]
        elif what == "q":
            s["q"] = pick_other(rng, _QUARTERS, s["q"])
        else:
            s["c"] = pick_other(rng, COMPANIES, s["c"])
    elif kind == "official":
        what = rng.choice(("name", "day", "neg", "antonym"))
        if what == "name":
            s["last"] = pick_other(rng, SURNAMES, s["last"])
        elif what == "day":
            s["day"] = pick_other(rng, DAYS, s["day"])
        elif what == "neg":
            s["neg"] = True
        else:
            s["verb"] = _OFFICIAL_VERBS[s["verb"]][3]
    elif kind == "arrest":
        what = rng.choice(("n", "city", "day"))
        if what == "n":
            s["n"] = s["n"] + rng.choice((-2, 1, 4, 10, 20))
        elif what == "city":
            s["city"] = pick_other(rng, CITIES, s["city"])
        else:
            s["day"] = pick_other(rng, DAYS, s["day"])
    elif kind == "deal":
        what = rng.choice(("swap", "swap", "x", "b"))
        if what == "swap":
            s["a"], s["b"] = s["b"], s["a"]
        elif what == "x":
            s["x"] = pick_other(rng, (45, 120, 310, 640, 980, 1200, 2500), s["x"])
        else:
            s["b"] = pick_other(rng, [c for c in COMPANIES if c != s["a"]], s["b"])
    else:
        what = rng.choice(("bad", "n", "name"))
        if what == "bad" or "{n}" not in _STATEMENTS[s["stmt"]][0]:
            s["bad"] = True
        elif what == "n":
            s["n"] = pick_other(rng, (150, 200, 350, 500, 1200, 3000), s["n"])
        else:
            s["name"] = random_person(rng)
    return s


def _mrpc_realise(rng, s, form):
    """One news-style sentence (tokenised like MRPC) for the event `s` in surface form `form`."""
    kind = s["kind"]
    if kind == "earnings":
        verbs, nouns = (_UP, _UP_NOUN) if s["up"] else (_DOWN, _DOWN_NOUN)
        v, c, m, p, q = rng.choice(verbs), s["c"], s["metric"], s["pct"], s["q"]
        forms = (f"{c} said its {q} quarter {m} {v} {p} percent .",
                 f"{c} 's {m} {v} {p} percent in the {q} quarter , the company said .",
                 f"In the {q} quarter , {m} at {c} {v} by {p} percent .",
                 f"{c} reported a {p} percent {rng.choice(nouns)} in {m} for the {q} quarter .")
    elif kind == "official":
        past, base, syn, _ = _OFFICIAL_VERBS[s["verb"]]
        v = rng.choice((past, syn))
        who, short = f"{s['title']} {s['first']} {s['last']}", f"{s['title']} {s['last']}"
        obj, day = s["obj"], s["day"]
        if s["neg"]:
            forms = (f"{who} did not {base} {obj} on {day} .",
                     f"On {day} , {short} refused to {base} {obj} .",
                     f"{cap(obj)} was not {past} by {who} on {day} .",
                     f"{s['first']} {s['last']} , the {s['city']} {s['title'].lower()} , declined to {base} {obj} on {day} , officials said .")
        else:
            forms = (f"{who} {v} {obj} on {day} .",
                     f"On {day} , {short} {v} {obj} .",
                     f"{cap(obj)} was {v} by {who} on {day} .",
                     f"{s['first']} {s['last']} , the {s['city']} {s['title'].lower()} , {v} {obj} on {day} , officials said .")
    elif kind == "arrest":
        n, city, day, reason = s["n"], s["city"], s["day"], s["reason"]
        forms = (f"Police arrested {n} people in {city} on {day} {reason} .",
                 f"{n} people were arrested in {city} on {day} {reason} , police said .",
                 f"On {day} , police in {city} detained {n} people {reason} .",
                 f"Police said {n} people had been taken into custody in {city} on {day} {reason} .")
    elif kind == "deal":
        a, b, x = s["a"], s["b"], s["x"]
        forms = (f"{a} agreed to buy {b} for $ {x} million .",
                 f"{b} will be acquired by {a} in a deal worth $ {x} million .",
                 f"{a} said it would pay $ {x} million to acquire {b} .",
                 f"Under the deal , {a} will purchase {b} for about $ {x} million .")
    else:
        stmt = _STATEMENTS[s["stmt"]][1 if s["bad"] else 0].format(n=s["n"])
        name = s["name"]
        forms = (f'" {cap(stmt)} , " {name} said .',
                 f"{name} said {stmt} .",
                 f"According to {name} , {stmt} .",
                 f"{name} told reporters that {stmt} .")
    return forms[form]


_MRPC_EXTRA = {
    "earnings": " , and the company plans to cut {n} jobs .",
    "official": " and promised more money for schools .",
    "arrest": " ; {n} officers were injured .",
    "deal": " , and will close {n} stores .",
    "quote": " , adding that more cuts were possible .",
}


def make_example(rng, spec):
    """A sentence pair and 1 (paraphrase) or 0, MRPC's roughly two-to-one mix."""
    s = _mrpc_event(rng)
    first = rng.randrange(4)
    second = pick_other(rng, range(4), first) if rng.random() < 0.8 else first
    s1 = _mrpc_realise(rng, s, first)
    if rng.random() < 0.67:
        s2, label = _mrpc_realise(rng, s, second), "1"
        if s2 == s1:
            s2 = _mrpc_realise(rng, s, pick_other(rng, range(4), first))
    else:
        label = "0"
        if rng.random() < 0.2:
            # One side reports substantially more than the other.
            s2 = _mrpc_realise(rng, s, second).rstrip(" .") + _MRPC_EXTRA[s["kind"]].format(
                n=rng.choice(("150", "200", "400", "1,200")))
        else:
            s2 = _mrpc_realise(rng, _mrpc_mutate(rng, s), second if rng.random() < 0.5 else first)
    if rng.random() < 0.5:
        s1, s2 = s2, s1
    return (s1, s2), [Example((s1, s2), label, label)]


def layout_rows(spec, examples, rng):
    rows = []
    for i, ex in enumerate(examples):
        id1 = rng.randint(100000, 3500000)
        id2 = id1 + rng.randint(1, 250)
        first = str(i) if not spec.labelled else ex.label
        rows.append([first, str(id1), str(id2), ex.texts[0], ex.texts[1]])
    if not spec.labelled:
        return ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"], rows, False
    # GLUE's MRPC train/dev keep the BOM of the Microsoft source file; test does not.
    return ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], rows, True
