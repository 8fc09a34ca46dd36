"""Deterministic built-in GLUE sample: the nine tasks in the official file layouts.

`generate()` writes CoLA, SST-2, MRPC, STS-B, QQP, MNLI, QNLI, RTE and WNLI
into `<out_dir>/<Task>/` with exactly the headers, column orders, BOMs and line
endings of the GLUE archives (shared/GLUE_FORMATS.md), so every reader and
preprocessing step of the toolkit runs unchanged when the real benchmark cannot
be downloaded (`sh download.sh` falls back to it).

The text comes from the small grammars and word lists in this file; nothing is
downloaded. Labels mean what they mean in each task, and every task mixes easy
cases with traps (negation that flips or does not flip a label, antonyms, the
same words in another order, one changed number or name, an extra fact) plus
3% seeded label noise, so a small encoder learns each task well above chance
but not perfectly. The same seed writes byte-identical files. This is smoke-test
and tutorial data: a score measured on it says nothing about GLUE.

    python -m experiments.glue.sample_data --out_dir data [--seed N] [--scale F] [--tasks CoLA,SST-2]
"""
import argparse
import dataclasses
import os
import random
import sys
import uuid
from dataclasses import dataclass, field

from data_utils.errors import UserError, run_cli

TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI")
DEFAULT_SEED = 1234
LABEL_NOISE = 0.03
MAX_SCALE = 50.0
# Written next to the task folders so people (and download.sh) can tell the
# sample from real GLUE, and so `generate` never overwrites a real download.
MARKER_FILE = "GLUE_SAMPLE.txt"


@dataclass(frozen=True)
class SampleFile:
    """One file of a task: its name, default row count and whether it has labels."""
    name: str
    rows: int
    labelled: bool
    domain: str = ""  # MNLI only: "matched" or "mismatched" genres


# Default sizes (scale 1.0): at least 2,000 train and 500 dev rows per task.
FILES = {
    "CoLA": (SampleFile("train.tsv", 2500, True), SampleFile("dev.tsv", 500, True),
             SampleFile("test.tsv", 500, False)),
    "SST-2": (SampleFile("train.tsv", 2500, True), SampleFile("dev.tsv", 500, True),
              SampleFile("test.tsv", 500, False)),
    "MRPC": (SampleFile("train.tsv", 2500, True), SampleFile("dev.tsv", 500, True),
             SampleFile("test.tsv", 500, False)),
    "STS-B": (SampleFile("train.tsv", 2500, True), SampleFile("dev.tsv", 500, True),
              SampleFile("test.tsv", 500, False)),
    "QQP": (SampleFile("train.tsv", 2500, True), SampleFile("dev.tsv", 500, True),
            SampleFile("test.tsv", 500, False)),
    "MNLI": (SampleFile("train.tsv", 4500, True, "matched"),
             SampleFile("dev_matched.tsv", 600, True, "matched"),
             SampleFile("dev_mismatched.tsv", 600, True, "mismatched"),
             SampleFile("test_matched.tsv", 500, False, "matched"),
             SampleFile("test_mismatched.tsv", 500, False, "mismatched")),
    "QNLI": (SampleFile("train.tsv", 2500, True), SampleFile("dev.tsv", 500, True),
             SampleFile("test.tsv", 500, False)),
    "RTE": (SampleFile("train.tsv", 2500, True), SampleFile("dev.tsv", 500, True),
            SampleFile("test.tsv", 500, False)),
    "WNLI": (SampleFile("train.tsv", 4000, True), SampleFile("dev.tsv", 500, True),
             SampleFile("test.tsv", 500, False)),
}

# Label strings as they appear in the files; None marks the regression task.
LABELS = {
    "CoLA": ("0", "1"), "SST-2": ("0", "1"), "MRPC": ("0", "1"), "STS-B": None,
    "QQP": ("0", "1"), "MNLI": ("contradiction", "neutral", "entailment"),
    "QNLI": ("entailment", "not_entailment"), "RTE": ("entailment", "not_entailment"),
    "WNLI": ("0", "1"),
}


@dataclass(frozen=True)
class Example:
    """One generated row before layout: text columns, noisy and clean label, extras."""
    texts: tuple
    label: object
    clean_label: object
    meta: dict = field(default_factory=dict)  # layout extras: MNLI genre/parses, STS-B source


# --------------------------------------------------------------------------- text helpers

_ATTACH = {".", ",", "?", "!", ";", ":", "n't", "'s"}


def _join(tokens):
    """Detokenise: punctuation and clitics attach to the previous word, 'a' becomes 'an'."""
    out = []
    for i, tok in enumerate(tokens):
        if tok == "a" and i + 1 < len(tokens) and tokens[i + 1][:1] in tuple("aeiou"):
            tok = "an"
        if out and tok in _ATTACH:
            out[-1] += tok
        else:
            out.append(tok)
    return " ".join(out)


def _cap(text):
    return text[:1].upper() + text[1:]


def _sentence(tokens, end="."):
    return _cap(_join(list(tokens) + [end]))


def _a(word):
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _other(rng, options, current):
    """A random option different from `current` (options must hold two or more)."""
    choice = rng.choice(options)
    while choice == current:
        choice = rng.choice(options)
    return choice


_FEMALE = ("Mary", "Susan", "Anna", "Laura", "Emma", "Julia", "Sarah", "Nina", "Clara", "Rosa",
           "Helen", "Alice", "Maria", "Lucy", "Grace", "Irene", "Joan", "Ruth")
_MALE = ("John", "Peter", "David", "Tom", "Mark", "Paul", "James", "Henry", "Carl", "Oscar",
         "Victor", "Simon", "Daniel", "Hugo", "Leon", "Frank", "George", "Bill")
_NAMES = _FEMALE + _MALE
_SURNAMES = ("Smith", "Novak", "Garcia", "Tanaka", "Muller", "Okafor", "Rossi", "Silva",
             "Kowalski", "Jensen", "Dubois", "Larsen", "Moreau", "Ivanov", "Patel", "Brennan",
             "Hughes", "Lindqvist", "Costa", "Weber", "Nakamura", "Fischer", "Mendez", "Olsen")
_CITIES = ("Lisbon", "Denver", "Oslo", "Nairobi", "Osaka", "Lyon", "Porto", "Dublin", "Austin",
           "Krakow", "Seattle", "Turin", "Leeds", "Perth", "Quito", "Tampa", "Bergen", "Graz")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def _person(rng):
    return f"{rng.choice(_NAMES)} {rng.choice(_SURNAMES)}"


# --------------------------------------------------------------------------- CoLA

_COLA_PEOPLE = ("teacher", "doctor", "farmer", "pilot", "student", "baker", "lawyer", "nurse",
                "painter", "engineer", "singer", "writer", "chef", "driver", "clerk", "sailor",
                "manager", "gardener", "journalist", "musician")
_COLA_THINGS = ("book", "letter", "car", "house", "window", "table", "song", "report", "picture",
                "cake", "boat", "garden", "computer", "map", "ticket", "key", "lamp", "phone",
                "painting", "bicycle", "chair", "door", "coat", "bag")
# (base, third person singular, past, past participle)
_COLA_TRANSITIVE = (
    ("write", "writes", "wrote", "written"), ("buy", "buys", "bought", "bought"),
    ("sell", "sells", "sold", "sold"), ("find", "finds", "found", "found"),
    ("see", "sees", "saw", "seen"), ("open", "opens", "opened", "opened"),
    ("carry", "carries", "carried", "carried"), ("paint", "paints", "painted", "painted"),
    ("fix", "fixes", "fixed", "fixed"), ("build", "builds", "built", "built"),
    ("clean", "cleans", "cleaned", "cleaned"), ("borrow", "borrows", "borrowed", "borrowed"),
    ("lose", "loses", "lost", "lost"), ("take", "takes", "took", "taken"),
    ("bring", "brings", "brought", "brought"), ("draw", "draws", "drew", "drawn"),
    ("watch", "watches", "watched", "watched"), ("break", "breaks", "broke", "broken"),
    ("choose", "chooses", "chose", "chosen"), ("hide", "hides", "hid", "hidden"),
    ("steal", "steals", "stole", "stolen"), ("forget", "forgets", "forgot", "forgotten"),
    ("describe", "describes", "described", "described"), ("admire", "admires", "admired", "admired"),
)
_COLA_INTRANSITIVE = (
    ("sleep", "sleeps", "slept", "slept"), ("laugh", "laughs", "laughed", "laughed"),
    ("arrive", "arrives", "arrived", "arrived"), ("swim", "swims", "swam", "swum"),
    ("run", "runs", "ran", "run"), ("sing", "sings", "sang", "sung"),
    ("wait", "waits", "waited", "waited"), ("smile", "smiles", "smiled", "smiled"),
    ("fall", "falls", "fell", "fallen"), ("cry", "cries", "cried", "cried"),
    ("disappear", "disappears", "disappeared", "disappeared"),
)
_COLA_PERSON_ADJECTIVES = ("young", "old", "tall", "tired", "happy", "famous", "quiet", "strange",
                           "clever", "angry")
_COLA_THING_ADJECTIVES = ("old", "new", "big", "small", "red", "heavy", "broken", "expensive",
                          "empty", "green", "wooden", "famous")
_COLA_ADVERBS = ("quickly", "slowly", "carefully", "quietly", "happily", "suddenly", "loudly")
_COLA_PLACES = ("in the park", "at the station", "near the river", "in the kitchen",
                "at the market", "in the library", "at school", "in the city", "by the lake",
                "at the office", "after lunch", "before dinner", "on Sunday", "last night")
_COLA_SOURCES = ("gj04", "bc01", "ad03", "b_73", "c_13", "cj99", "d_98", "g_81", "ks08", "l-93",
                 "m_02", "r-67", "sks13", "w_80", "clc95", "j_71", "k_89")


def _cola_np(rng, kind, plural, allow_name=True):
    """A noun phrase as tokens; names (no determiner) only for singular people."""
    if kind == "person" and not plural and allow_name and rng.random() < 0.25:
        return [rng.choice(_NAMES)]
    noun = rng.choice(_COLA_PEOPLE if kind == "person" else _COLA_THINGS)
    if plural:
        noun += "s"
        det = rng.choice(("the", "the", "these", "some", "my", "two"))
    else:
        det = rng.choice(("the", "the", "a", "this", "my"))
    tokens = [det]
    if rng.random() < 0.3:
        tokens.append(rng.choice(_COLA_PERSON_ADJECTIVES if kind == "person" else _COLA_THING_ADJECTIVES))
    tokens.append(noun)
    return tokens


def _cola_clause(rng):
    """An acceptable clause as role-tagged segments and the forms its corruptions need.

    Returns (segments, info): segments is a list of [role, tokens]; info names
    the finite verb's wrong-number form ("agree"), a wrong verb form ("form")
    and the sentence end.
    """
    verb = rng.choice(_COLA_TRANSITIVE)
    plural = rng.random() < 0.35
    subj = _cola_np(rng, "person", plural)
    obj = _cola_np(rng, "thing", rng.random() < 0.4)
    mod = rng.choice(_COLA_PLACES).split() if rng.random() < 0.35 else []
    kind = rng.choice(("past", "past", "present", "perfect", "passive", "negated", "want",
                       "question", "copula", "intransitive", "relative", "fronted"))
    info = {"agree": None, "form": None, "end": ".", "intransitive": False}
    base, s3, past, pp = verb
    if kind == "past" or kind == "fronted":
        segs = [["subj", subj], ["verb", [past]], ["obj", obj]]
        if pp != past:
            info["form"] = ("verb", 0, pp)
        if kind == "fronted":
            mod = rng.choice(_COLA_PLACES).split()
            segs = [["mod", mod + [","]]] + segs
            return segs, info
    elif kind == "present":
        finite = base if plural else s3
        segs = [["subj", subj], ["verb", [finite]], ["obj", obj]]
        info["agree"] = ("verb", 0, s3 if plural else base)
        info["form"] = ("verb", 0, pp if pp != past else base + "ing")
    elif kind == "perfect":
        segs = [["subj", subj], ["aux", ["have" if plural else "has"]], ["verb", [pp]], ["obj", obj]]
        info["agree"] = ("aux", 0, "has" if plural else "have")
        if pp != past:
            info["form"] = ("verb", 0, past)
    elif kind == "passive":
        # The thing is the subject here; the person moves into the by-phrase.
        thing_plural = rng.random() < 0.4
        subj = _cola_np(rng, "thing", thing_plural)
        agent = _cola_np(rng, "person", rng.random() < 0.3)
        segs = [["subj", subj], ["aux", ["were" if thing_plural else "was"]], ["verb", [pp]],
                ["obj", ["by"] + agent]]
        info["agree"] = ("aux", 0, "was" if thing_plural else "were")
        if pp != past:
            info["form"] = ("verb", 0, past)
    elif kind == "negated":
        if rng.random() < 0.5:
            aux = ["did", "not"]
        else:
            aux = ["do" if plural else "does", "not"]
            info["agree"] = ("aux", 0, "does" if plural else "do")
        segs = [["subj", subj], ["aux", aux], ["verb", [base]], ["obj", obj]]
        info["form"] = ("verb", 0, past)
    elif kind == "want":
        segs = [["subj", subj], ["aux", ["want" if plural else "wants", "to"]], ["verb", [base]],
                ["obj", obj]]
        info["agree"] = ("aux", 0, "wants" if plural else "want")
        info["form"] = ("verb", 0, past)
    elif kind == "question":
        segs = [["aux", ["Did"]], ["subj", subj], ["verb", [base]], ["obj", obj]]
        info["form"] = ("verb", 0, past)
        info["end"] = "?"
        return segs, info
    elif kind == "copula":
        thing_plural = rng.random() < 0.4
        np_kind = rng.choice(("person", "thing"))
        subj = _cola_np(rng, np_kind, thing_plural)
        adj = rng.choice(_COLA_PERSON_ADJECTIVES if np_kind == "person" else _COLA_THING_ADJECTIVES)
        tense = rng.choice(("present", "past"))
        be = ({True: "are", False: "is"} if tense == "present" else {True: "were", False: "was"})
        degree = [rng.choice(("very", "quite", "rather"))] if rng.random() < 0.4 else []
        segs = [["subj", subj], ["verb", [be[thing_plural]]], ["obj", degree + [adj]]]
        info["agree"] = ("verb", 0, be[not thing_plural])
        mod = []
    elif kind == "intransitive":
        iverb = rng.choice(_COLA_INTRANSITIVE)
        adverb = [rng.choice(_COLA_ADVERBS)] if rng.random() < 0.5 else []
        segs = [["subj", subj], ["verb", [iverb[2]]], ["adv", adverb]]
        if iverb[3] != iverb[2]:
            info["form"] = ("verb", 0, iverb[3])
        info["intransitive"] = True
    else:  # relative clause: the main verb agrees with the head, not the nearer noun
        head_plural = rng.random() < 0.5
        subj = _cola_np(rng, "person", head_plural, allow_name=False)
        rel_verb = rng.choice(_COLA_TRANSITIVE)
        attractor = _cola_np(rng, "person", not head_plural, allow_name=False)
        rel = ["who", rel_verb[2]] + attractor
        finite = base if head_plural else s3
        segs = [["subj", subj + rel], ["verb", [finite]], ["obj", obj]]
        info["agree"] = ("verb", 0, s3 if head_plural else base)
        mod = []
    if mod:
        segs.append(["mod", mod])
    return segs, info


def _cola_corrupt(rng, segs, info):
    """Make the clause ungrammatical in one of several ways; None if none applies."""
    roles = {role: i for i, (role, _) in enumerate(segs)}
    options = []
    if info["agree"]:
        options += ["agree", "agree"]
    if info["form"]:
        options += ["form", "form"]
    if "obj" in roles and "verb" in roles:
        options.append("order")
    np_roles = [r for r in ("subj", "obj") if r in roles and segs[roles[r]][1]
                and segs[roles[r]][1][0] in ("the", "a", "this", "my", "these", "some", "two")]
    if np_roles:
        options += ["double_det", "swap_det"]
    if "verb" in roles and len(segs) >= 3:
        options.append("drop_verb")
    if info["intransitive"]:
        options += ["argument", "argument"]
    if not options:
        return None
    kind = rng.choice(options)
    segs = [[role, list(tokens)] for role, tokens in segs]
    if kind in ("agree", "form"):
        role, index, word = info[kind]
        segs[roles[role]][1][index] = word
    elif kind == "order":
        # Verb-final order: "the teacher the letter wrote"
        verb_seg = segs.pop(roles["verb"])
        obj_index = [role for role, _ in segs].index("obj")
        segs.insert(obj_index + 1, verb_seg)
    elif kind == "double_det":
        tokens = segs[roles[rng.choice(np_roles)]][1]
        tokens.insert(0, rng.choice(("the", "a", "the")))
    elif kind == "swap_det":
        tokens = segs[roles[rng.choice(np_roles)]][1]
        tokens[0], tokens[1] = tokens[1], tokens[0]
    elif kind == "drop_verb":
        segs = [seg for seg in segs if seg[0] not in ("verb", "aux")]
    else:  # an intransitive verb with a direct object
        segs[roles["adv"]][1] = _cola_np(rng, "thing", rng.random() < 0.3)
    return segs


def _cola(rng, spec):
    segs, info = _cola_clause(rng)
    acceptable = rng.random() < 0.66
    if not acceptable:
        bad = _cola_corrupt(rng, segs, info)
        if bad is None:
            acceptable = True
        else:
            segs = bad
    tokens = [tok for _, seg in segs for tok in seg]
    text = _sentence(tokens, info["end"])
    label = "1" if acceptable else "0"
    return text, [Example((text,), label, label)]


def _cola_rows(spec, examples, rng):
    if not spec.labelled:
        return ["index", "sentence"], [[str(i), ex.texts[0]] for i, ex in enumerate(examples)], False
    rows = [[rng.choice(_COLA_SOURCES), ex.label, "*" if ex.label == "0" else "", ex.texts[0]]
            for ex in examples]
    return None, rows, False


# --------------------------------------------------------------------------- SST-2

_SST_POS = ("charming", "funny", "moving", "brilliant", "gripping", "delightful", "clever",
            "beautiful", "engaging", "heartfelt", "wonderful", "smart", "witty", "affecting",
            "fresh", "entertaining", "compelling", "touching", "inventive", "lovely", "thoughtful")
_SST_NEG = ("dull", "tedious", "boring", "clumsy", "predictable", "lifeless", "bland", "pointless",
            "mediocre", "tiresome", "awful", "forgettable", "shallow", "incoherent", "flat",
            "painful", "messy", "lazy", "stale", "unfunny", "dreary")
_SST_SUBJ_SG = ("the film", "this movie", "the story", "the script", "the acting", "the direction",
                "the soundtrack", "the dialogue", "the ending", "the plot", "the cinematography",
                "the premise", "this comedy", "the thriller", "the documentary", "the sequel",
                "the director 's latest effort", "the first half", "the screenplay", "it")
_SST_SUBJ_PL = ("the performances", "the characters", "the jokes", "the action scenes",
                "the songs", "the visuals")
_SST_NOUNS = ("film", "movie", "journey", "experience", "ride", "drama", "comedy", "story",
              "effort", "debut", "picture", "thriller", "portrait", "romance")
_SST_INTENS = ("very", "really", "remarkably", "thoroughly", "utterly", "consistently",
               "genuinely", "surprisingly", "often", "quite")
_SST_POS_NP = ("a triumph", "a delight", "a gem", "a pleasure to watch", "a real treat",
               "a small miracle")
_SST_NEG_NP = ("a mess", "a chore", "a disappointment", "a waste of time", "a slog", "a misfire")
_SST_POS_VERB = ("loved", "enjoyed", "admired", "adored", "savored")
_SST_NEG_VERB = ("hated", "disliked", "resented", "regretted seeing")
_SST_OPENERS = ("", "", "", "", "ultimately , ", "overall , ", "in the end , ", "frankly , ")
_SST_TAILS = ("", "", "", "", " from start to finish", " for most of its running time",
              " at times", " in places")


def _sst_subject(rng):
    if rng.random() < 0.8:
        return rng.choice(_SST_SUBJ_SG), "is", "feels"
    return rng.choice(_SST_SUBJ_PL), "are", "feel"


def _sst_adj(rng, positive):
    return rng.choice(_SST_POS if positive else _SST_NEG)


def _sst(rng, spec):
    """A lower-cased, tokenised review snippet and its sentiment (1 positive)."""
    pol = rng.random() < 0.5
    adj = _sst_adj(rng, pol)
    subj, be, feel = _sst_subject(rng)
    intens = rng.choice(_SST_INTENS) + " " if rng.random() < 0.4 else ""
    kind = rng.choice(("plain", "plain", "negated", "negated", "contrast", "contrast", "phrase",
                       "np", "no_flip", "verb", "not_only"))
    if kind == "plain":
        text, label = f"{subj} {be} {intens}{adj}", pol
    elif kind == "negated":
        form = rng.randrange(6)
        if form == 0:
            text = f"{subj} {be} n't {adj}"
        elif form == 1:
            text = f"{subj} {be} not {intens}{adj}"
        elif form == 2:
            text = f"{subj} {be} never {adj}"
        elif form == 3:
            text = f"{subj} {be} far from {adj}"
        elif form == 4:
            text = f"nothing about {subj} is {adj}"
        else:
            text = f"{subj} hardly {feel} {adj}"
        label = not pol
    elif kind == "contrast":
        # The clause that carries the verdict is not always the last one.
        other = _sst_adj(rng, rng.random() < 0.5)
        subj2, be2, _ = _sst_subject(rng)
        form = rng.randrange(3)
        if form == 0:
            text = f"{subj2} {be2} {other} , but {subj} {be} {intens}{adj}"
        elif form == 1:
            text = f"although {subj2} {be2} {other} , {subj} {be} {intens}{adj}"
        else:
            text = f"{subj} {be} {intens}{adj} , even if {subj2} {be2} {other}"
        label = pol
    elif kind == "phrase":
        adj2 = _sst_adj(rng, pol)
        noun = rng.choice(_SST_NOUNS)
        if adj2 == adj or rng.random() < 0.4:
            text = _a(f"{intens}{adj} {noun}")
        else:
            text = _a(f"{adj} and {adj2} {noun}")
        label = pol
    elif kind == "np":
        if rng.random() < 0.7:
            text, label = f"{subj} {be} {rng.choice(_SST_POS_NP if pol else _SST_NEG_NP)}", pol
        else:
            text = f"{subj} {be} {rng.choice(('not', 'hardly', 'far from'))} {rng.choice(_SST_POS_NP)}"
            label = False
    elif kind == "no_flip":
        # Negation words that do not flip the verdict.
        noun = rng.choice(_SST_NOUNS)
        form = rng.randrange(4)
        if form == 0:
            text, label = f"you wo n't find a more {adj} {noun} this year", pol
        elif form == 1:
            text, label = f"{subj} never fails to be {adj}", pol
        elif form == 2:
            text, label = f"i could n't have asked for a more {adj} {noun}", pol
        else:
            text, label = f"there is nothing {_sst_adj(rng, False)} about {subj}", True
    elif kind == "verb":
        form = rng.randrange(3)
        if form == 0:
            text = f"i {rng.choice(_SST_POS_VERB if pol else _SST_NEG_VERB)} {subj}"
            label = pol
        elif form == 1:
            text, label = f"i did n't {rng.choice(('enjoy', 'like', 'love'))} {subj}", False
        else:
            text, label = f"it 's hard not to {rng.choice(('love', 'admire', 'like'))} {subj}", True
    else:
        adj2 = _sst_adj(rng, pol)
        text, label = f"{subj} {be} not only {adj} but also {adj2}", pol
    text = rng.choice(_SST_OPENERS) + text + rng.choice(_SST_TAILS)
    if rng.random() < 0.85:
        text += " ."
    label = "1" if label else "0"
    return text, [Example((text,), label, label)]


def _sst_rows(spec, examples, rng):
    if not spec.labelled:
        return ["index", "sentence"], [[str(i), ex.texts[0]] for i, ex in enumerate(examples)], False
    # Real SST-2 train/dev sentences end with a space before the tab.
    return ["sentence", "label"], [[ex.texts[0] + " ", ex.label] for ex in examples], False


# --------------------------------------------------------------------------- MRPC

_COMPANIES = ("Northwind", "Globex", "Acme Systems", "Vertex Energy", "Helios Bank",
              "Pinnacle Foods", "Orion Telecom", "Summit Airlines", "Blue River Mining",
              "Cobalt Motors", "Keystone Retail", "Atlas Pharma", "Meridian Media", "Harbor Lines")
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
        s.update(c=rng.choice(_COMPANIES), metric=rng.choice(_METRICS), up=rng.random() < 0.5,
                 pct=_pct(rng), q=rng.choice(_QUARTERS))
    elif kind == "official":
        s.update(title=rng.choice(_TITLES), first=rng.choice(_NAMES), last=rng.choice(_SURNAMES),
                 verb=rng.randrange(len(_OFFICIAL_VERBS)), obj=rng.choice(_BILLS),
                 day=rng.choice(_DAYS), city=rng.choice(_CITIES), neg=False)
    elif kind == "arrest":
        s.update(n=rng.randint(3, 60), city=rng.choice(_CITIES), day=rng.choice(_DAYS),
                 reason=rng.choice(_REASONS))
    elif kind == "deal":
        a = rng.choice(_COMPANIES)
        s.update(a=a, b=_other(rng, _COMPANIES, a), x=rng.choice((45, 120, 310, 640, 980, 1200, 2500)))
    else:
        s.update(name=_person(rng), stmt=rng.randrange(len(_STATEMENTS)), bad=False,
                 n=rng.choice((150, 200, 350, 500, 1200, 3000)))
    return s


def _mrpc_mutate(rng, s):
    """Change one fact so the sentences no longer mean the same thing."""
    s = dict(s)
    kind = s["kind"]
    if kind == "earnings":
        what = rng.choice(("pct", "up", "q", "c"))
        if what == "pct":
            s["pct"] = _other(rng, [_pct(rng) for _ in range(4)] + [str(int(float(s["pct"])) + 3)], s["pct"])
        elif what == "up":
            s["up"] = not s["up"]
        elif what == "q":
            s["q"] = _other(rng, _QUARTERS, s["q"])
        else:
            s["c"] = _other(rng, _COMPANIES, s["c"])
    elif kind == "official":
        what = rng.choice(("name", "day", "neg", "antonym"))
        if what == "name":
            s["last"] = _other(rng, _SURNAMES, s["last"])
        elif what == "day":
            s["day"] = _other(rng, _DAYS, s["day"])
        elif what == "neg":
            s["neg"] = True
        else:
            s["verb"] = _OFFICIAL_VERBS[s["verb"]][3]
    elif kind == "arrest":
        what = rng.choice(("n", "city", "day"))
        if what == "n":
            s["n"] = s["n"] + rng.choice((-2, 1, 4, 10, 20))
        elif what == "city":
            s["city"] = _other(rng, _CITIES, s["city"])
        else:
            s["day"] = _other(rng, _DAYS, s["day"])
    elif kind == "deal":
        what = rng.choice(("swap", "swap", "x", "b"))
        if what == "swap":
            s["a"], s["b"] = s["b"], s["a"]
        elif what == "x":
            s["x"] = _other(rng, (45, 120, 310, 640, 980, 1200, 2500), s["x"])
        else:
            s["b"] = _other(rng, [c for c in _COMPANIES if c != s["a"]], s["b"])
    else:
        what = rng.choice(("bad", "n", "name"))
        if what == "bad" or "{n}" not in _STATEMENTS[s["stmt"]][0]:
            s["bad"] = True
        elif what == "n":
            s["n"] = _other(rng, (150, 200, 350, 500, 1200, 3000), s["n"])
        else:
            s["name"] = _person(rng)
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
                     f"{_cap(obj)} was not {past} by {who} on {day} .",
                     f"{s['first']} {s['last']} , the {s['city']} {s['title'].lower()} , declined to {base} {obj} on {day} , officials said .")
        else:
            forms = (f"{who} {v} {obj} on {day} .",
                     f"On {day} , {short} {v} {obj} .",
                     f"{_cap(obj)} was {v} by {who} on {day} .",
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
        forms = (f'" {_cap(stmt)} , " {name} said .',
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


def _mrpc(rng, spec):
    """A sentence pair and 1 (paraphrase) or 0, MRPC's roughly two-to-one mix."""
    s = _mrpc_event(rng)
    first = rng.randrange(4)
    second = _other(rng, range(4), first) if rng.random() < 0.8 else first
    s1 = _mrpc_realise(rng, s, first)
    if rng.random() < 0.67:
        s2, label = _mrpc_realise(rng, s, second), "1"
        if s2 == s1:
            s2 = _mrpc_realise(rng, s, _other(rng, range(4), first))
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


def _mrpc_rows(spec, examples, rng):
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


# --------------------------------------------------------------------------- STS-B

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
        b["obj"] = _other(rng, a["verb"][2], a["obj"])
        target = 2.8
    elif level == "subject" or level == "object":
        b["subj"] = _other(rng, people, a["subj"])
        target = 3.0 if level == "subject" else 2.6
    elif level == "negation":
        return _sts_caption(rng, a), _sts_caption(rng, b, negate=True), 2.2
    elif level == "verb":
        b["verb"] = _other(rng, verbs, a["verb"])
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
        c2, target = _other(rng, _STS_COUNTRIES, country), 2.4
    elif level == "verb":
        v2, target = _other(rng, _STS_NEWS_VERBS, verb), 1.8
    elif level == "object":
        o2, target = _other(rng, _STS_NEWS_OBJECTS, obj), 1.4
    elif level == "two":
        c2, o2, target = _other(rng, _STS_COUNTRIES, country), _other(rng, _STS_NEWS_OBJECTS, obj), 0.6
    elif level == "unrelated":
        c2 = _other(rng, _STS_COUNTRIES, country)
        v2, o2, target = _other(rng, _STS_NEWS_VERBS, verb), _other(rng, _STS_NEWS_OBJECTS, obj), 0.1
    else:
        target = 4.8
    s1 = f"{country} {rng.choice(verb[1])} {rng.choice(obj[1])}"
    s2 = f"{c2} {rng.choice(v2[1])} {rng.choice(o2[1])}"
    return s1, s2, target


def _sts(rng, spec):
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


def _sts_rows(spec, examples, rng):
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


# --------------------------------------------------------------------------- QQP

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
    text = _cap(template.format(**slots))
    # Quora users are not careful typists.
    if rng.random() < 0.08:
        text = text.rstrip("?")
    if rng.random() < 0.05:
        text = text[:1].lower() + text[1:]
    return text


def _qqp(rng, spec):
    """A question pair: 1 if both ask the same thing, QQP's roughly 40% duplicates."""
    intent = rng.choice(tuple(_QQP_INTENTS))
    kind, same, related = _QQP_INTENTS[intent]
    slots = _qqp_slots(rng, kind)
    t1 = rng.choice(same)
    q1 = _qqp_fill(rng, t1, slots)
    if rng.random() < 0.4:
        q2, label = _qqp_fill(rng, _other(rng, same, t1), slots), "1"
    else:
        label = "0"
        trap = rng.random()
        if trap < 0.4:
            # Same template, one entity changed: high word overlap, different question.
            other = _qqp_slots(rng, kind)
            while other == slots:
                other = _qqp_slots(rng, kind)
            if "y" in slots and rng.random() < 0.5 and kind == "pair":
                other = {"x": slots["x"], "y": _other(rng, [p[1] for p in _QQP_PAIRS], slots["y"])}
            q2 = _qqp_fill(rng, rng.choice(same), other)
        elif trap < 0.85:
            q2 = _qqp_fill(rng, rng.choice(related), slots)
        else:
            other_intent = _other(rng, tuple(_QQP_INTENTS), intent)
            okind, osame, _ = _QQP_INTENTS[other_intent]
            q2 = _qqp_fill(rng, rng.choice(osame), _qqp_slots(rng, okind))
    if rng.random() < 0.5:
        q1, q2 = q2, q1
    return (q1, q2), [Example((q1, q2), label, label)]


def _qqp_rows(spec, examples, rng):
    if not spec.labelled:
        return (["id", "question1", "question2"],
                [[str(i), ex.texts[0], ex.texts[1]] for i, ex in enumerate(examples)], False)
    ids = rng.sample(range(400000), len(examples))
    rows = [[str(i), str(2 * i + 1), str(2 * i + 2), ex.texts[0], ex.texts[1], ex.label]
            for i, ex in zip(ids, examples)]
    return ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], rows, False


# --------------------------------------------------------------------------- MNLI

# Five training genres ("matched") and five others ("mismatched"), as in MultiNLI.
# verbs: (past, past participle, base, antonym past or None)
_MNLI_GENRES = {
    "fiction": {
        "people": ("the captain", "the old woman", "the stranger", "the young man", "the girl",
                   "the soldier", "the innkeeper"),
        "things": ("letter", "sword", "lantern", "door", "horse", "key", "map"),
        "verbs": (("opened", "opened", "open", "closed"), ("carried", "carried", "carry", None),
                  ("hid", "hidden", "hide", None), ("found", "found", "find", None),
                  ("dropped", "dropped", "drop", None), ("buried", "buried", "bury", None)),
        "adjs": (("heavy", "light"), ("old", "new"), ("dark", "bright"), ("small", "large")),
        "places": ("in the castle", "by the river", "in the forest", "at the inn", "on the hill"),
        "times": ("that night", "at dawn", "the next morning"),
        "reasons": ("because it was cold", "without a word", "for the first time"),
    },
    "government": {
        "people": ("the senator", "the auditor", "the agency director", "the committee",
                   "the inspector", "the state officials"),
        "things": ("report", "budget", "regulation", "proposal", "policy", "audit", "contract"),
        "verbs": (("approved", "approved", "approve", "rejected"), ("reviewed", "reviewed", "review", None),
                  ("published", "published", "publish", None), ("revised", "revised", "revise", None),
                  ("rejected", "rejected", "reject", "approved"), ("funded", "funded", "fund", None)),
        "adjs": (("detailed", "brief"), ("final", "preliminary"), ("public", "confidential"),
                 ("expensive", "cheap")),
        "places": ("in Washington", "at the agency", "in the state capital", "before Congress",
                   "at the hearing"),
        "times": ("last year", "in March", "on Tuesday"),
        "reasons": ("because of budget cuts", "after a long debate", "without public comment"),
    },
    "slate": {
        "people": ("the critic", "the columnist", "the editor", "the candidate", "the economist",
                   "the professor"),
        "things": ("novel", "film", "essay", "campaign", "theory", "column", "book"),
        "verbs": (("praised", "praised", "praise", "criticized"), ("criticized", "criticized", "criticize", "praised"),
                  ("reviewed", "reviewed", "review", None), ("defended", "defended", "defend", "attacked"),
                  ("discussed", "discussed", "discuss", None), ("quoted", "quoted", "quote", None)),
        "adjs": (("popular", "unpopular"), ("serious", "silly"), ("long", "short"),
                 ("original", "derivative")),
        "places": ("in New York", "in the magazine", "on television", "in a recent interview",
                   "at the conference"),
        "times": ("last week", "in 1996", "this spring"),
        "reasons": ("because it was controversial", "in great detail", "for its style"),
    },
    "telephone": {
        "people": ("my neighbor", "my brother", "my wife", "our friend", "the kids", "my uncle"),
        "things": ("truck", "garden", "dog", "fence", "television", "boat", "recipe"),
        "verbs": (("fixed", "fixed", "fix", None), ("painted", "painted", "paint", None),
                  ("sold", "sold", "sell", "bought"), ("bought", "bought", "buy", "sold"),
                  ("washed", "washed", "wash", None), ("borrowed", "borrowed", "borrow", None)),
        "adjs": (("old", "new"), ("big", "small"), ("cheap", "expensive"), ("clean", "dirty")),
        "places": ("in Texas", "at home", "in the backyard", "out in the country", "in Dallas"),
        "times": ("last summer", "a few years ago", "on the weekend"),
        "reasons": ("because it was on sale", "with some help", "for the first time"),
    },
    "travel": {
        "people": ("the tourist", "the visitor", "the guide", "the traveler", "the hikers", "the couple"),
        "things": ("museum", "cathedral", "beach", "market", "temple", "harbor", "castle"),
        "verbs": (("visited", "visited", "visit", "avoided"), ("explored", "explored", "explore", None),
                  ("photographed", "photographed", "photograph", None), ("toured", "toured", "tour", None),
                  ("reached", "reached", "reach", None), ("avoided", "avoided", "avoid", "visited")),
        "adjs": (("ancient", "modern"), ("crowded", "empty"), ("famous", "unknown"), ("quiet", "noisy")),
        "places": ("in Lisbon", "on the island", "near the coast", "in the old town", "in Madeira"),
        "times": ("in the morning", "last year", "during the festival"),
        "reasons": ("because it was raining", "with a local guide", "for the first time"),
    },
    "facetoface": {
        "people": ("my roommate", "the guy next door", "my mom", "my friend", "my sister", "the teacher"),
        "things": ("apartment", "car", "homework", "dinner", "movie", "couch", "laptop"),
        "verbs": (("cleaned", "cleaned", "clean", None), ("borrowed", "borrowed", "borrow", None),
                  ("watched", "watched", "watch", None), ("finished", "finished", "finish", None),
                  ("liked", "liked", "like", "hated"), ("moved", "moved", "move", None)),
        "adjs": (("messy", "tidy"), ("cheap", "expensive"), ("long", "short"), ("new", "old")),
        "places": ("at school", "downtown", "at the mall", "in my room", "at church"),
        "times": ("last night", "on Friday", "after class"),
        "reasons": ("because we were bored", "without asking", "like every week"),
    },
    "letters": {
        "people": ("the donors", "our volunteers", "the alumni", "the trustees", "the members",
                   "your family"),
        "things": ("scholarship", "library", "program", "campaign", "clinic", "shelter", "fund"),
        "verbs": (("supported", "supported", "support", "opposed"), ("funded", "funded", "fund", None),
                  ("renewed", "renewed", "renew", None), ("expanded", "expanded", "expand", None),
                  ("established", "established", "establish", None), ("visited", "visited", "visit", None)),
        "adjs": (("generous", "modest"), ("large", "small"), ("new", "old"), ("successful", "failed")),
        "places": ("at the university", "in the community", "in Indianapolis", "at the annual dinner",
                   "across the state"),
        "times": ("this spring", "last year", "in 1998"),
        "reasons": ("thanks to your gift", "for the children", "with matching funds"),
    },
    "nineeleven": {
        "people": ("the controllers", "the pilots", "the agents", "the investigators", "the flight crew",
                   "the commission"),
        "things": ("warning", "transponder signal", "radio message", "flight plan", "cockpit recording",
                   "memo", "alert"),
        "verbs": (("received", "received", "receive", None), ("ignored", "ignored", "ignore", "heeded"),
                  ("tracked", "tracked", "track", None), ("reported", "reported", "report", None),
                  ("reviewed", "reviewed", "review", None), ("missed", "missed", "miss", "noticed")),
        "adjs": (("urgent", "routine"), ("clear", "confusing"), ("early", "late"), ("classified", "public")),
        "places": ("in Boston", "at the command center", "over Ohio", "in New York", "at headquarters"),
        "times": ("that morning", "at 8:46", "before the attack"),
        "reasons": ("without further delay", "for the second time", "because of the confusion"),
    },
    "oup": {
        "people": ("the weavers", "the artisans", "the merchants", "the scholars", "the dyers", "the guild"),
        "things": ("cloth", "loom", "thread", "pattern", "garment", "dye", "carpet"),
        "verbs": (("produced", "produced", "produce", None), ("traded", "traded", "trade", None),
                  ("dyed", "dyed", "dye", None), ("sold", "sold", "sell", "bought"),
                  ("designed", "designed", "design", None), ("exported", "exported", "export", "imported")),
        "adjs": (("fine", "coarse"), ("bright", "dull"), ("expensive", "cheap"), ("traditional", "modern")),
        "places": ("in India", "in the village", "at the market", "in Kashmir", "along the silk road"),
        "times": ("in the eighteenth century", "for generations", "in the 1850s"),
        "reasons": ("for the royal court", "by hand", "because demand was high"),
    },
    "verbatim": {
        "people": ("the linguist", "the lexicographer", "the reader", "the columnist", "the author",
                   "the editors"),
        "things": ("word", "dictionary", "phrase", "spelling", "idiom", "pun", "definition"),
        "verbs": (("coined", "coined", "coin", None), ("defined", "defined", "define", None),
                  ("misspelled", "misspelled", "misspell", None), ("explained", "explained", "explain", None),
                  ("quoted", "quoted", "quote", None), ("accepted", "accepted", "accept", "rejected")),
        "adjs": (("rare", "common"), ("formal", "informal"), ("old", "new"), ("obscure", "familiar")),
        "places": ("in the newspaper", "in Britain", "in the column", "in the second edition",
                   "in a letter"),
        "times": ("in 1920", "last month", "long ago"),
        "reasons": ("with some amusement", "for the first time", "because it was ambiguous"),
    },
}
MNLI_MATCHED_GENRES = ("fiction", "government", "slate", "telephone", "travel")
MNLI_MISMATCHED_GENRES = ("facetoface", "letters", "nineeleven", "oup", "verbatim")
# Verbs between two people, all asymmetric so swapping the two changes the meaning.
_MNLI_PERSON_VERBS = (("called", "called", "call"), ("thanked", "thanked", "thank"),
                      ("helped", "helped", "help"), ("warned", "warned", "warn"),
                      ("followed", "followed", "follow"), ("interviewed", "interviewed", "interview"),
                      ("blamed", "blamed", "blame"))

_FUNCTION_TAGS = {
    "the": "DT", "a": "DT", "an": "DT", "this": "DT", "that": "DT", "some": "DT", "no": "DT",
    "my": "PRP$", "our": "PRP$", "your": "PRP$", "his": "PRP$", "her": "PRP$", "their": "PRP$",
    "it": "PRP", "we": "PRP", "they": "PRP", "in": "IN", "at": "IN", "on": "IN", "by": "IN",
    "near": "IN", "for": "IN", "with": "IN", "without": "IN", "because": "IN", "after": "IN",
    "before": "IN", "of": "IN", "over": "IN", "during": "IN", "along": "IN", "across": "IN",
    "like": "IN", "thanks": "NNS", "to": "TO", "was": "VBD", "were": "VBD", "did": "VBD",
    "not": "RB", "never": "RB", "again": "RB", "out": "RB", "downtown": "RB", "ago": "RB",
    "long": "RB", "first": "JJ", "second": "JJ", "next": "JJ", "last": "JJ", "great": "JJ",
    "few": "JJ", "every": "DT", "annual": "JJ", "local": "JJ", "public": "JJ", "recent": "JJ",
    "royal": "JJ", "high": "JJ", "further": "JJ", "matching": "JJ", "old": "JJ", "young": "JJ",
    "eighteenth": "JJ", "state": "NN", "someone": "NN", "nobody": "NN", "something": "NN",
    "and": "CC", "else": "RB",
}
_ALL_ADJS = {adj for genre in _MNLI_GENRES.values() for pair in genre["adjs"] for adj in pair}


def _tag(word):
    low = word.lower()
    if low in _FUNCTION_TAGS:
        return _FUNCTION_TAGS[low]
    if low in _ALL_ADJS:
        return "JJ"
    if word[:1].isdigit():
        return "CD"
    if word[:1].isupper():
        return "NNP"
    if low.endswith("s") and not low.endswith("ss") and low not in ("news", "alumni"):
        return "NNS"
    if low == "alumni":
        return "NNS"
    return "NN"


def _leaf(word, tag=None):
    return (tag or _tag(word), word)


def _np(words):
    return ("NP", [_leaf(w) for w in words])


def _phrase(words):
    """A modifier (place, time, reason) as a small tree labelled by its first word."""
    first = words[0].lower()
    if first in ("because",):
        return ("SBAR", [_leaf(words[0], "IN"), ("S", [_leaf(w) for w in words[1:]])])
    if _FUNCTION_TAGS.get(first) == "IN" and len(words) > 1:
        return ("PP", [_leaf(words[0], "IN"), _np(words[1:])])
    if len(words) == 1:
        return ("ADVP", [_leaf(words[0], "RB")])
    return ("NP-TMP", [_leaf(w) for w in words])


def _capitalise_tree(tree):
    """Capitalise the first word of a sentence tree."""
    label, kids = tree
    if isinstance(kids, str):
        return (label, _cap(kids))
    return (label, [_capitalise_tree(kids[0])] + list(kids[1:]))


def _s(subj_tree, vp_tree):
    return _capitalise_tree(("S", [subj_tree, vp_tree, (".", ".")]))


def _vp(verb_leaves, *complements):
    return ("VP", list(verb_leaves) + [c for c in complements if c is not None])


def _ptb(tree):
    label, kids = tree
    if isinstance(kids, str):
        return f"({label} {kids})"
    return f"({label} {' '.join(_ptb(k) for k in kids)})"


def _binary(tree):
    """Right-branching binary bracketing, the shape of MNLI's *_binary_parse columns."""
    label, kids = tree
    if isinstance(kids, str):
        return kids
    parts = [_binary(k) for k in kids]
    out = parts[-1]
    for part in reversed(parts[:-1]):
        out = f"( {part} {out} )"
    return out


def _words(tree):
    label, kids = tree
    if isinstance(kids, str):
        return [kids]
    return [w for k in kids for w in _words(k)]


def _plural(words):
    last = words[-1]
    return last == "alumni" or (last.endswith("s") and not last.endswith("ss"))


def _mnli_frame(rng, g):
    """Premise slots: who did what to which thing, where and when."""
    adj = None
    if rng.random() < 0.6:
        pair = rng.choice(g["adjs"])
        side = rng.randrange(2)
        adj = (pair[side], pair[1 - side], pair)
    return {
        "subj": rng.choice(g["people"]).split(),
        "verb": rng.choice(g["verbs"]),
        "thing": rng.choice(g["things"]).split(),
        "adj": adj,
        "place": rng.choice(g["places"]).split() if rng.random() < 0.5 else None,
        "time": rng.choice(g["times"]).split() if rng.random() < 0.3 else None,
        "reason": rng.choice(g["reasons"]).split() if rng.random() < 0.2 else None,
    }


def _mnli_obj(f, adj="keep"):
    word = f["adj"][0] if adj == "keep" and f["adj"] else (None if adj == "keep" else adj)
    return _np(["the"] + ([word] if word else []) + f["thing"])


def _mnli_mods(f, place=True, time=True):
    mods = []
    if place and f["place"]:
        mods.append(_phrase(f["place"]))
    if time and f["time"]:
        mods.append(_phrase(f["time"]))
    return mods


def _mnli_thing_is(f, adj, negate=False):
    """'The museum was (not) crowded.'"""
    be = "were" if _plural(f["thing"]) else "was"
    leaves = [_leaf(be, "VBD")] + ([_leaf("not", "RB")] if negate else [])
    return _s(_np(["the"] + f["thing"]), _vp(leaves, ("ADJP", [_leaf(adj, "JJ")])))


def _mnli_thing_hypotheses(rng, f, g):
    """One hypothesis per label for a person-verb-thing premise."""
    past, pp, base, anti = f["verb"]
    subj = _np(f["subj"])
    v = [_leaf(past, "VBD")]
    full_mods = _mnli_mods(f, time=False)
    ent, con, neu = [], [], []
    if f["adj"] or f["place"] or f["time"]:
        ent.append(_s(subj, _vp(v, _mnli_obj(f, adj=None))))
    ent.append(_s(_np(["someone"]), _vp(v, _mnli_obj(f), *full_mods)))
    ent.append(_s(_mnli_obj(f), _vp([_leaf("were" if _plural(f["thing"]) else "was", "VBD")],
                                     _vp([_leaf(pp, "VBN")], ("PP", [_leaf("by", "IN"), subj])))))
    if f["place"]:
        be = "were" if _plural(f["subj"]) else "was"
        ent.append(_s(subj, _vp([_leaf(be, "VBD")], _phrase(f["place"]))))
    con.append(_s(subj, _vp([_leaf("did", "VBD"), _leaf("not", "RB")],
                            _vp([_leaf(base, "VB")], _mnli_obj(f), *full_mods))))
    con.append(_s(_np(["nobody"]), _vp(v, _mnli_obj(f), *full_mods)))
    con.append(_s(subj, _vp([_leaf("never", "RB"), _leaf(past, "VBD")], _mnli_obj(f))))
    if anti:
        con.append(_s(subj, _vp([_leaf(anti, "VBD")], _mnli_obj(f), *full_mods)))
    if f["reason"]:
        ent.append(_s(subj, _vp(v, _mnli_obj(f, adj=None), _phrase(f["reason"]))))
        other_reason = _other(rng, g["reasons"], " ".join(f["reason"])).split()
    else:
        other_reason = rng.choice(g["reasons"]).split()
    neu.append(_s(subj, _vp(v, _mnli_obj(f), *full_mods, _phrase(other_reason))))
    neu.append(_s(_np(_other(rng, g["people"], " ".join(f["subj"])).split()),
                  _vp(v, _mnli_obj(f), *full_mods)))
    neu.append(_s(_np(["someone", "else"]), _vp(v, _mnli_obj(f), *full_mods)))
    if not f["time"]:
        neu.append(_s(subj, _vp(v, _mnli_obj(f), *full_mods, _phrase(rng.choice(g["times"]).split()))))
    neu.append(_s(subj, _vp(v, _mnli_obj(f), *full_mods, ("ADVP", [_leaf("again", "RB")]))))
    other_pairs = [p for p in g["adjs"] if not f["adj"] or p != f["adj"][2]]
    other_adj = rng.choice(rng.choice(other_pairs))
    if f["adj"]:
        adj, antonym, _ = f["adj"]
        # Adjective claims about the thing appear under all three labels.
        ent.append(_mnli_thing_is(f, adj))
        ent.append(_mnli_thing_is(f, antonym, negate=True))
        con.append(_mnli_thing_is(f, antonym))
        con.append(_mnli_thing_is(f, adj, negate=True))
        con.append(_s(subj, _vp(v, _mnli_obj(f, adj=antonym), *full_mods)))
        neu.append(_mnli_thing_is(f, other_adj))
        neu.append(_mnli_thing_is(f, other_adj, negate=True))
    neu.append(_s(subj, _vp(v, _mnli_obj(f, adj=other_adj), *full_mods)))
    return ent, con, neu


def _mnli_negated_hypotheses(rng, f, g, nobody):
    """Premise 'S did not / never V the T' or 'Nobody V the T', and its hypotheses.

    Under negation, adding detail keeps entailment and dropping it loses it, so
    the same surface edits as in the positive case get different labels here.
    """
    past, pp, base, _ = f["verb"]
    subj = _np(f["subj"])
    mods = _mnli_mods(f)
    extra = []
    if not f["place"]:
        extra.append(_phrase(rng.choice(g["places"]).split()))
    if not f["time"]:
        extra.append(_phrase(rng.choice(g["times"]).split()))

    def did_not(who, obj, *more):
        return _s(who, _vp([_leaf("did", "VBD"), _leaf("not", "RB")], _vp([_leaf(base, "VB")], obj, *more)))

    if nobody:
        premise = _s(_np(["nobody"]), _vp([_leaf(past, "VBD")], _mnli_obj(f), *mods))
        person = _np(rng.choice(g["people"]).split())
    elif rng.random() < 0.5:
        premise = did_not(subj, _mnli_obj(f), *mods)
        person = subj
    else:
        premise = _s(subj, _vp([_leaf("never", "RB"), _leaf(past, "VBD")], _mnli_obj(f), *mods))
        person = subj
    other_thing = dict(f, thing=_other(rng, g["things"], " ".join(f["thing"])).split(), adj=None)
    v = [_leaf(past, "VBD")]
    be = "were" if _plural(f["thing"]) else "was"
    ent = [did_not(person, _mnli_obj(f), *mods, *extra)]
    con = [_s(person, _vp(v, _mnli_obj(f), *mods)),
           _s(_mnli_obj(f), _vp([_leaf(be, "VBD")], _vp([_leaf(pp, "VBN")], ("PP", [_leaf("by", "IN"), person]),
                                                         *mods)))]
    neu = [did_not(person, _mnli_obj(other_thing)),
           _s(_np(["someone"]), _vp(v, _mnli_obj(other_thing))),
           _s(person, _vp(v, _mnli_obj(other_thing), *mods))]
    if nobody:
        ent.append(_s(_np(["nobody"]), _vp(v, _mnli_obj(f), *mods, *extra)))
        con.append(_s(_np(["someone"]), _vp(v, _mnli_obj(f), *mods)))
        neu.append(_s(_np(["nobody"]), _vp(v, _mnli_obj(other_thing))))
    else:
        ent.append(_s(_mnli_obj(f), _vp([_leaf(be, "VBD"), _leaf("not", "RB")],
                                        _vp([_leaf(pp, "VBN")], ("PP", [_leaf("by", "IN"), subj]), *mods))))
        neu.append(_s(_np(["someone"]), _vp(v, _mnli_obj(f), *mods)))
        neu.append(_s(_np(_other(rng, g["people"], " ".join(f["subj"])).split()),
                      _vp([_leaf("did", "VBD"), _leaf("not", "RB")], _vp([_leaf(base, "VB")], _mnli_obj(f)))))
        neu.append(did_not(subj, _mnli_obj(f), *mods, _phrase(rng.choice(g["reasons"]).split())))
    if f["adj"]:
        adj, antonym, _ = f["adj"]
        ent.append(_mnli_thing_is(f, adj))
        con.append(_mnli_thing_is(f, antonym))
        other = rng.choice(rng.choice([p for p in g["adjs"] if p != f["adj"][2]]))
        neu.append(_mnli_thing_is(f, other))
    return premise, ent, con, neu


def _mnli_person_hypotheses(rng, g):
    """Premise 'A verbed B' and hypotheses, including the swapped 'B verbed A' (neutral)."""
    a = rng.choice(g["people"]).split()
    b = _other(rng, g["people"], " ".join(a)).split()
    past, pp, base = rng.choice(_MNLI_PERSON_VERBS)
    place = rng.choice(g["places"]).split() if rng.random() < 0.5 else None
    mods = [_phrase(place)] if place else []
    v = [_leaf(past, "VBD")]
    premise = _s(_np(a), _vp(v, _np(b), *mods))
    ent = [_s(_np(a), _vp(v, _np(["someone"]))), _s(_np(["someone"]), _vp(v, _np(b))),
           _s(_np(b), _vp([_leaf("were" if _plural(b) else "was", "VBD")],
                          _vp([_leaf(pp, "VBN")], ("PP", [_leaf("by", "IN"), _np(a)]))))]
    con = [_s(_np(a), _vp([_leaf("did", "VBD"), _leaf("not", "RB")], _vp([_leaf(base, "VB")], _np(b)))),
           _s(_np(["nobody"]), _vp(v, _np(b), *mods)),
           _s(_np(a), _vp([_leaf("never", "RB"), _leaf(past, "VBD")], _np(b)))]
    third = _other(rng, [p for p in g["people"] if p.split() != b], " ".join(a)).split()
    neu = [_s(_np(b), _vp(v, _np(a), *mods)), _s(_np(b), _vp(v, _np(a))),
           _s(_np(a), _vp(v, _np(third), *mods)), _s(_np(["someone", "else"]), _vp(v, _np(b))),
           _s(_np(a), _vp(v, _np(b), *mods, _phrase(rng.choice(g["reasons"]).split())))]
    return premise, ent, con, neu


def _mnli_clause(f):
    return ("S", [_np(f["subj"]), _vp([_leaf(f["verb"][0], "VBD")], _mnli_obj(f, adj=None))])


def _mnli_pair_hypotheses(rng, g):
    """Premise 'A verbed X, and B verbed Y'; a cross-paired hypothesis is neutral."""
    f1 = _mnli_frame(rng, g)
    f2 = _mnli_frame(rng, g)
    while f2["subj"] == f1["subj"] or f2["thing"] == f1["thing"]:
        f2 = _mnli_frame(rng, g)
    premise = _capitalise_tree(("S", [_mnli_clause(f1), (",", ","), ("CC", "and"), _mnli_clause(f2),
                                      (".", ".")]))
    ent, con, neu = [], [], []
    for f, other in ((f1, f2), (f2, f1)):
        subj, v, base = _np(f["subj"]), [_leaf(f["verb"][0], "VBD")], f["verb"][2]
        ent.append(_s(subj, _vp(v, _mnli_obj(f, adj=None))))
        ent.append(_s(_np(["someone"]), _vp(v, _mnli_obj(f, adj=None))))
        con.append(_s(subj, _vp([_leaf("did", "VBD"), _leaf("not", "RB")],
                                _vp([_leaf(base, "VB")], _mnli_obj(f, adj=None)))))
        con.append(_s(_np(["nobody"]), _vp(v, _mnli_obj(f, adj=None))))
        neu.append(_s(subj, _vp(v, _mnli_obj(other, adj=None))))
        neu.append(_s(subj, _vp(v, _mnli_obj(f, adj=None), _phrase(rng.choice(g["reasons"]).split()))))
    return premise, ent, con, neu


def _mnli(rng, spec):
    """One premise with three hypotheses (entailment, neutral, contradiction), as MNLI was built."""
    genres = MNLI_MATCHED_GENRES if spec.domain == "matched" else MNLI_MISMATCHED_GENRES
    genre = rng.choice(genres)
    g = _MNLI_GENRES[genre]
    kind = rng.random()
    if kind < 0.45:
        f = _mnli_frame(rng, g)
        reason = [_phrase(f["reason"])] if f["reason"] else []
        premise = _s(_np(f["subj"]), _vp([_leaf(f["verb"][0], "VBD")], _mnli_obj(f), *_mnli_mods(f), *reason))
        ent, con, neu = _mnli_thing_hypotheses(rng, f, g)
    elif kind < 0.65:
        f = _mnli_frame(rng, g)
        premise, ent, con, neu = _mnli_negated_hypotheses(rng, f, g, nobody=rng.random() < 0.3)
    elif kind < 0.82:
        premise, ent, con, neu = _mnli_person_hypotheses(rng, g)
    else:
        premise, ent, con, neu = _mnli_pair_hypotheses(rng, g)
    p_text = _cap(_join(_words(premise)))
    examples = []
    for label, options in (("entailment", ent), ("neutral", neu), ("contradiction", con)):
        hyp = rng.choice(options)
        meta = {"genre": genre, "parses": (_binary(premise), _binary(hyp),
                                           f"(ROOT {_ptb(premise)})", f"(ROOT {_ptb(hyp)})")}
        h_text = _cap(_join(_words(hyp)))
        examples.append(Example((p_text, h_text), label, label, meta))
    return p_text, examples


def _mnli_rows(spec, examples, rng):
    header = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
              "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
    prompt_ids, used = {}, set()
    rows = []
    dev = spec.labelled and spec.name != "train.tsv"
    for i, ex in enumerate(examples):
        # Hypotheses written for the same premise share its promptID, as in MNLI.
        if ex.texts[0] not in prompt_ids:
            prompt = rng.randint(10000, 150000)
            while prompt in used:
                prompt = rng.randint(10000, 150000)
            used.add(prompt)
            prompt_ids[ex.texts[0]] = prompt
        prompt = prompt_ids[ex.texts[0]]
        row = [str(i), str(prompt), "", ex.meta["genre"], *ex.meta["parses"], *ex.texts]
        if not spec.labelled:
            row[2] = str(prompt)
        elif dev:
            annotations = _mnli_annotations(rng, ex.label)
            row[2] = f"{prompt}{annotations[0][0]}"
            row += annotations + [ex.label]
        else:
            row[2] = f"{prompt}{ex.label[0]}"
            row += [ex.label, ex.label]
        rows.append(row)
    if dev:
        header += ["label1", "label2", "label3", "label4", "label5", "gold_label"]
    elif spec.labelled:
        header += ["label1", "gold_label"]
    return header, rows, False


def _mnli_annotations(rng, gold):
    """Five annotator labels whose majority is `gold` (label1 is the author's)."""
    agree = rng.choice((3, 4, 4, 5, 5, 5))
    others = [label for label in LABELS["MNLI"] if label != gold]
    labels = [gold] * agree + [rng.choice(others) for _ in range(5 - agree)]
    rng.shuffle(labels)
    return labels


# --------------------------------------------------------------------------- QNLI

_SYLLABLES = ("ka", "ren", "do", "mir", "vel", "os", "ta", "lin", "bar", "sul", "ne", "tor",
              "ga", "li", "ven", "ro", "mar", "thi", "el", "dan", "sa", "mo")
_FIELDS = ("chemistry", "law", "music", "medicine", "philosophy", "astronomy", "architecture",
           "economics", "botany", "mathematics")
_RELATIVES = ("younger brother", "mother", "elder sister", "father", "cousin")
_SEAS = ("Baltic Sea", "Black Sea", "North Sea", "Adriatic Sea", "Caspian Sea", "Atlantic Ocean")
_GOODS = ("timber", "salt", "grain", "wool", "coal", "wine")
_INDUSTRIES = ("shipbuilding", "textiles", "tourism", "mining", "fishing", "steel", "software")
_FOUNDERS = ("Roman soldiers", "Greek traders", "Benedictine monks", "Dutch merchants",
             "Viking settlers", "Celtic tribes")
_FOODS = ("insects", "seeds", "small fish", "fruit", "leaves", "snails")
_HABITATS = ("wetlands", "mountain forests", "coastal cliffs", "dry grasslands", "river valleys")
_ANIMAL_KINDS = ("warbler", "frog", "beetle", "lizard", "bat", "owl")


def _coin(rng, parts=2):
    return _cap("".join(rng.choice(_SYLLABLES) for _ in range(parts)))


def _qnli_person(rng):
    p = f"{rng.choice(_NAMES)} {_coin(rng, 3)}"
    city, city2, city3 = _coin(rng) + "burg", _coin(rng) + "a", _coin(rng) + "ov"
    year = rng.randint(1780, 1930)
    age = rng.randint(58, 92)
    org = f"{_coin(rng)} Institute"
    field_ = rng.choice(_FIELDS)
    field2 = _other(rng, _FIELDS, field_)
    return [
        ((f"Where was {p} born?", "place"), (f"In what year was {p} born?", "year"),
         (f"When was {p} born?", "year")),
        ((f"{p} was born in {city} in {year}.", ("place", "year")),
         (f"{p} was born in {city} to a family of farmers.", ("place",)),
         (f"{p} was born in {year}, the second of five children.", ("year",)),
         (f"{p}'s {rng.choice(_RELATIVES)} was born in {city2} in {year - rng.randint(2, 9)}.", ())),
    ], [
        ((f"What subject did {p} study at the University of {city2}?", "field"),
         (f"Where did {p} study {field_}?", "univ")),
        ((f"{p} studied {field_} at the University of {city2} before moving to {city3}.", ("field", "univ")),
         (f"{p} studied {field_} in the evenings while working as a clerk.", ("field",)),
         (f"{p} later taught {field2} at the University of {city2} for many years.", ())),
    ], [
        ((f"When did {p} found the {org}?", "year"), (f"What did {p} found in {year + 30}?", "org")),
        ((f"In {year + 30}, {p} founded the {org}, which trained young {field_} students.", ("year", "org")),
         (f"{p} founded the {org} to support research in {field_}.", ("org",)),
         (f"{p} later served as director of the {org}.", ())),
    ], [
        ((f"Where did {p} die?", "place"), (f"At what age did {p} die?", "age")),
        ((f"{p} died in {city3} in {year + age} at the age of {age}.", ("place", "age")),
         (f"{p} died in {city3} after a long illness.", ("place",)),
         (f"{p} moved to {city3} in {year + age - 12}, where the family lived for many years.", ())),
    ]


def _qnli_river(rng):
    r = _coin(rng)
    city = _coin(rng) + "grad"
    mountains = _coin(rng)
    sea = rng.choice(_SEAS)
    century = rng.choice(("twelfth", "fifteenth", "seventeenth", "eighteenth"))
    return [
        ((f"How long is the {r} River?", "length"),),
        ((f"The {r} River is {rng.randint(80, 1900)} kilometres long.", ("length",)),
         (f"The {r} River is one of the longest rivers in the region.", ())),
    ], [
        ((f"Into which sea does the {r} River flow?", "mouth"),),
        ((f"The {r} flows into the {sea} near the port of {city}.", ("mouth",)),
         (f"Ships from the {sea} rarely travel up the {r} because of its shallow waters.", ())),
    ], [
        ((f"In which mountains does the {r} River rise?", "source"),
         (f"Where does the {r} River begin?", "source")),
        ((f"The {r} rises in the {mountains} Mountains, {rng.randint(20, 90)} kilometres from {city}.", ("source",)),
         (f"The {mountains} Mountains are known for their cold winters and heavy snow.", ())),
    ], [
        ((f"What did the {r} River carry during the {century} century?", "goods"),),
        ((f"During the {century} century, the {r} carried {rng.choice(_GOODS)} to the markets of {city}.", ("goods",)),
         (f"During the {century} century, the {r} formed the border between two kingdoms.", ())),
    ]


def _qnli_city(rng):
    c = _coin(rng) + rng.choice(("ville", "burg", "ford", "ia"))
    industry = rng.choice(_INDUSTRIES)
    founders = rng.choice(_FOUNDERS)
    year = rng.randint(800, 1700)
    return [
        ((f"What is the population of {c}?", "pop"),),
        ((f"{c} has a population of about {rng.randint(12, 900) * 1000} people.", ("pop",)),
         (f"{c} is the second largest city in the province.", ())),
    ], [
        ((f"Who founded {c}?", "founder"), (f"When was {c} founded?", "year")),
        ((f"{c} was founded by {founders} in {year}.", ("founder", "year")),
         (f"{c} was founded by {founders} on the banks of a small river.", ("founder",)),
         (f"{_other(rng, _FOUNDERS, founders)} settled in the valley near {c} in {year + 200}.", ())),
    ], [
        ((f"What is the main industry of {c}?", "industry"),),
        ((f"The main industry of {c} is {industry}, which employs most of its residents.", ("industry",)),
         (f"{c} is also home to a small {_other(rng, _INDUSTRIES, industry)} museum.", ())),
    ]


def _qnli_species(rng):
    x = f"{_coin(rng)} {rng.choice(_ANIMAL_KINDS)}"
    return [
        ((f"What does the {x} feed on?", "diet"), (f"What does the {x} mainly eat?", "diet")),
        ((f"The {x} feeds mainly on {rng.choice(_FOODS)}.", ("diet",)),
         (f"The {x} is often hunted by larger birds and snakes.", ())),
    ], [
        ((f"Where does the {x} live?", "habitat"),),
        ((f"The {x} is found in the {rng.choice(_HABITATS)} of the southern provinces.", ("habitat",)),
         (f"The {x} was first described by {_person(rng)} in {rng.randint(1800, 1990)}.", ())),
    ], [
        ((f"How large can the {x} grow?", "size"),),
        ((f"Adults of the {x} grow up to {rng.randint(3, 60)} centimetres long.", ("size",)),
         (f"Adults of the {x} are brown with pale spots.", ())),
    ]


_QNLI_PREFIXES = ("", "", "", "According to local records, ", "By most accounts, ",
                  "As several sources note, ")


def _qnli(rng, spec):
    """A question and a sentence on the same subject; entailment if it holds the answer.

    Most wrong sentences are themselves answers, to another question about the
    same subject or to the same question about a similar subject, so a
    sentence alone does not give its label away.
    """
    make = rng.choice((_qnli_person, _qnli_river, _qnli_city, _qnli_species))
    facts = make(rng)
    index = rng.randrange(len(facts))
    fact = facts[index]
    question, need = rng.choice(fact[0])
    if rng.random() < 0.5:
        sentence = rng.choice([s for s, info in fact[1] if need in info])
        label = "entailment"
    else:
        label = "not_entailment"
        trap = rng.random()
        partial = [s for s, info in fact[1] if info and need not in info]
        if trap < 0.3:
            look_alike = make(rng)[index]
            sentence = rng.choice([s for s, info in look_alike[1] if need in info])
        elif trap < 0.5 and partial:
            sentence = rng.choice(partial)
        elif trap < 0.85:
            sentence = rng.choice([s for f in facts if f is not fact for s, info in f[1] if info])
        else:
            sentence = rng.choice([s for f in facts for s, info in f[1] if not info])
    prefix = rng.choice(_QNLI_PREFIXES)
    if prefix:
        first_word = sentence.split(" ", 1)[0]
        # Only sentence-initial common words lose their capital; names keep theirs.
        if first_word in ("The", "During", "In", "Adults", "Ships"):
            sentence = sentence[0].lower() + sentence[1:]
        sentence = prefix + sentence
    return (question, sentence), [Example((question, sentence), label, label)]


def _pair_rows(spec, examples, first, second):
    """Layout shared by QNLI, RTE and WNLI: index, two text columns, label."""
    header = ["index", first, second]
    rows = [[str(i), ex.texts[0], ex.texts[1]] + ([ex.label] if spec.labelled else [])
            for i, ex in enumerate(examples)]
    return header + (["label"] if spec.labelled else []), rows, False


def _qnli_rows(spec, examples, rng):
    return _pair_rows(spec, examples, "question", "sentence")


# --------------------------------------------------------------------------- RTE

_ROLES = ("chief executive", "founder", "chairman", "spokesperson", "finance director")
_ILLNESSES = ("lung cancer", "heart failure", "pneumonia", "a stroke")
_PROFESSIONS = ("actor", "painter", "composer", "novelist", "architect")
_ANIMALS_RTE = ("frog", "bat", "orchid", "beetle", "lizard", "songbird")
_COUNTRIES = ("Peru", "Borneo", "Madagascar", "Gabon", "Ecuador", "Laos", "Colombia")


def _rte_company(rng):
    p, role = _person(rng), rng.choice(_ROLES)
    c = rng.choice(_COMPANIES)
    c2 = _other(rng, _COMPANIES, c)
    city = rng.choice(_CITIES)
    city2 = _other(rng, _CITIES, city)
    n = rng.choice((200, 350, 500, 800, 1200))
    s1 = (f"{p}, the {role} of {c}, said on {rng.choice(_DAYS)} that the company will open a new "
          f"factory in {city}, creating about {n} jobs.")
    yes = (f"{p} works for {c}.", f"{c} will open a factory in {city}.", f"{p} is the {role} of {c}.",
           f"A new factory will be built in {city}.", f"The factory will create about {n} jobs.",
           f"{c} will open a new factory in {city}, creating about {n} jobs.")
    no = (f"{p} works for {c2}.", f"{c2} will open a factory in {city}.",
          f"{c} will open a factory in {city2}.", f"A new factory will be built in {city2}.",
          f"The factory will create about {n * 3} jobs.",
          f"{p} is the {_other(rng, _ROLES, role)} of {c}.")
    return s1, yes, no


def _rte_obituary(rng):
    widow = f"{rng.choice(_FEMALE)} {rng.choice(_SURNAMES)}"
    husband = f"{rng.choice(_MALE)} {widow.split()[1]}"
    stranger = f"{rng.choice(_MALE)} {_other(rng, _SURNAMES, widow.split()[1])}"
    prof, illness, age = rng.choice(_PROFESSIONS), rng.choice(_ILLNESSES), rng.randint(44, 90)
    s1 = (f"{widow}, the widow of the {prof} {husband}, has died of {illness} at age {age}, "
          f"according to the {husband} Foundation.")
    yes = (f"{widow} has died of {illness}.", f"{widow} was married to {husband}.",
           f"{widow} died at age {age}.", f"{husband} was {_a(prof)}.",
           f"{widow} has died of {illness} at age {age}.")
    no = (f"{husband} has died of {illness}.", f"{widow} was married to {stranger}.",
          f"{widow} died at age {age + rng.randint(3, 12)}.",
          f"{husband} was {_a(_other(rng, _PROFESSIONS, prof))}.",
          f"{widow} has died of {_other(rng, _ILLNESSES, illness)}.")
    return s1, yes, no


def _rte_deal(rng):
    a = rng.choice(_COMPANIES)
    b = _other(rng, _COMPANIES, a)
    city = rng.choice(_CITIES)
    x = rng.choice((45, 120, 310, 640, 980))
    s1 = f"{a}, based in {city}, agreed on {rng.choice(_DAYS)} to buy its rival {b} for ${x} million."
    yes = (f"{a} will acquire {b}.", f"{a} is based in {city}.", f"{b} is being bought.",
           f"{a} will pay ${x} million for {b}.", f"{a} agreed to buy its rival {b}.")
    no = (f"{b} will acquire {a}.", f"{a} is based in {_other(rng, _CITIES, city)}.",
          f"{a} is being bought.", f"{b} is based in {city}.", f"{a} will pay ${x * 2} million for {b}.")
    return s1, yes, no


def _rte_discovery(rng):
    animal, country, city = rng.choice(_ANIMALS_RTE), rng.choice(_COUNTRIES), rng.choice(_CITIES)
    s1 = (f"Scientists from the University of {city} have discovered a new species of {animal} "
          f"in the forests of {country}.")
    yes = (f"A new species of {animal} has been discovered.", f"The new species was found in {country}.",
           f"Scientists from the University of {city} found a new {animal}.",
           f"Scientists have discovered a new species of {animal} in the forests of {country}.")
    no = (f"A new species of {_other(rng, _ANIMALS_RTE, animal)} has been discovered.",
          f"The new species was found in {_other(rng, _COUNTRIES, country)}.",
          f"Scientists from the University of {_other(rng, _CITIES, city)} found a new {animal}.")
    return s1, yes, no


def _rte_election(rng):
    winner, loser, city = _person(rng), _person(rng), rng.choice(_CITIES)
    year, votes = rng.randint(1990, 2020), rng.choice((312, 1200, 4500, 87))
    s1 = f"{winner} was elected mayor of {city} in {year}, defeating {loser} by {votes} votes."
    yes = (f"{winner} won the election in {city}.", f"{loser} lost the election.",
           f"{winner} became mayor of {city}.", f"{winner} defeated {loser}.",
           f"{winner} was elected in {year}.", f"{winner} was elected mayor of {city}.")
    no = (f"{loser} won the election in {city}.", f"{winner} lost the election.",
          f"{winner} became mayor of {_other(rng, _CITIES, city)}.", f"{loser} defeated {winner}.",
          f"{winner} was elected in {year + 4}.")
    return s1, yes, no


def _rte(rng, spec):
    """A news sentence and a short claim: entailment if the sentence guarantees the claim."""
    events = (_rte_company, _rte_obituary, _rte_deal, _rte_discovery, _rte_election)
    event = rng.choice(events)
    s1, yes, no = event(rng)
    if rng.random() < 0.5:
        s2, label = rng.choice(yes), "entailment"
    elif rng.random() < 0.2:
        # A claim about some other event entirely.
        s2, label = rng.choice(_other(rng, events, event)(rng)[1]), "not_entailment"
    else:
        s2, label = rng.choice(no), "not_entailment"
    return (s1, s2), [Example((s1, s2), label, label)]


def _rte_rows(spec, examples, rng):
    return _pair_rows(spec, examples, "sentence1", "sentence2")


# --------------------------------------------------------------------------- WNLI

# Winograd-style schemas: (sentence with {a}/{b}/{pr}/{w}, restated clause with
# {c}/{w}, the two special words, which candidate each word makes the pronoun
# refer to, and typed candidate pairs (first, second, pronoun)). The first word
# is the more common reading (75%): as in real text, one reading of a schema
# dominates, which gives a small model a foothold on this otherwise XOR-like task.
_WNLI_SCHEMAS = (
    ("{a} could not lift {b} because {pr} was so {w}.", "{c} was so {w}.", ("weak", "heavy"), ("a", "b"),
     (("the old man", "the boy", "he"), ("the woman", "the girl", "she"),
      ("the grandfather", "his grandson", "he"), ("the nurse", "the patient", "she"))),
    ("{a} thanked {b} for all the help {pr} had {w}.", "{c} had {w} help.", ("given", "received"), ("b", "a"),
     (("the student", "the teacher", "she"), ("the patient", "the nurse", "he"),
      ("the tenant", "the neighbor", "she"), ("the rookie", "the coach", "he"))),
    ("{a} asked {b} for advice because {pr} {w}.", "{c} {w}.", ("was an expert", "was confused"), ("b", "a"),
     (("the student", "the professor", "she"), ("the patient", "the doctor", "he"),
      ("the tourist", "the guide", "she"), ("the client", "the lawyer", "he"))),
    ("{a} paid {b} because {pr} had {w}.", "{c} had {w}.", ("done the work", "lost a bet"), ("b", "a"),
     (("the homeowner", "the plumber", "he"), ("the customer", "the painter", "she"),
      ("the landlord", "the electrician", "he"), ("the client", "the gardener", "she"))),
    ("{a} tried to call {b}, but {pr} {w}.", "{c} {w}.", ("was not answering", "could not get through"),
     ("b", "a"), (("the manager", "the assistant", "she"), ("the reporter", "the senator", "he"),
                  ("the mother", "the babysitter", "she"), ("the coach", "the player", "he"))),
    ("{a} gave {b} an umbrella because {pr} was {w}.", "{c} was {w}.",
     ("going out in the rain", "staying at home"), ("b", "a"),
     (("the host", "the guest", "she"), ("the father", "his son", "he"), ("the landlady", "the tenant", "she"))),
    ("{a} lent {b} some money because {pr} was {w}.", "{c} was {w}.", ("generous", "broke"), ("a", "b"),
     (("the uncle", "his nephew", "he"), ("the aunt", "her niece", "she"), ("the banker", "the student", "he"))),
    ("{a} beat {b} at chess because {pr} {w}.", "{c} {w}.", ("had practiced every day", "was distracted"),
     ("a", "b"), (("the champion", "the challenger", "she"), ("the grandmaster", "the amateur", "he"))),
    ("{a} did not fit into {b} because it was too {w}.", "{c} was too {w}.", ("big", "small"), ("a", "b"),
     (("the trophy", "the suitcase", "it"), ("the statue", "the box", "it"), ("the guitar", "the case", "it"),
      ("the cake", "the tin", "it"), ("the lamp", "the drawer", "it"))),
    ("{a} ate {b} because it was {w}.", "{c} was {w}.", ("hungry", "tasty"), ("a", "b"),
     (("the cat", "the mouse", "it"), ("the fox", "the chicken", "it"), ("the fish", "the worm", "it"),
      ("the dog", "the sausage", "it"), ("the owl", "the beetle", "it"))),
    ("{a} is clogged with {b}. It has to be {w}.", "{c} has to be {w}.", ("cleaned", "removed"), ("a", "b"),
     (("the drain", "hair", "it"), ("the pipe", "leaves", "it"), ("the filter", "dust", "it"),
      ("the sink", "grease", "it"), ("the gutter", "moss", "it"))),
    ("{a} passed {b} because it was {w}.", "{c} was {w}.", ("faster", "slower"), ("a", "b"),
     (("the truck", "the bicycle", "it"), ("the car", "the tractor", "it"), ("the bus", "the van", "it"),
      ("the train", "the ferry", "it"))),
    ("{a} refused {b} a permit because they {w} violence.", "{c} {w} violence.", ("feared", "advocated"),
     ("a", "b"), (("the city councilmen", "the demonstrators", "they"), ("the officials", "the protesters", "they"),
                  ("the police", "the marchers", "they"))),
)
# Context sentences around the schema keep the pool of distinct items large, so
# train, dev and test are drawn from the same distribution.
_WNLI_OPENERS = ("", "It was late in the afternoon. ", "Nobody expected what happened next. ",
                 "This happened last spring. ", "The day had started quietly. ", "It was raining again. ",
                 "Things were busy that week. ", "Everyone was in a hurry. ", "It was the first week of June. ",
                 "The weekend had finally come. ", "It was a cold morning. ")
_WNLI_CLOSERS = ("", " Nobody said a word.", " That was the end of it.", " Everyone went home early.",
                 " It happened twice that month.", " Later they laughed about it.", " The others were surprised.",
                 " Nothing else happened that day.", " It was not the first time.")


def _wnli(rng, spec):
    """A pronoun sentence and a rewrite naming one candidate: 1 if that is the referent."""
    template, clause, words, refs, pairs = rng.choice(_WNLI_SCHEMAS)
    a, b, pronoun = rng.choice(pairs)
    which = 0 if rng.random() < 0.75 else 1
    referent = refs[which]
    if pronoun in ("he", "she"):
        names = rng.random()
        if names < 0.35:
            # A man and a woman: the pronoun's gender alone picks the referent.
            a, b = rng.choice(_MALE), rng.choice(_FEMALE)
            if rng.random() < 0.5:
                a, b = rng.choice(_FEMALE), rng.choice(_MALE)
            pronoun = "he" if {"a": a, "b": b}[referent] in _MALE else "she"
        elif names < 0.5:
            # Two names of the same gender: only the special word resolves the pronoun.
            same = _MALE if pronoun == "he" else _FEMALE
            a = rng.choice(same)
            b = _other(rng, same, a)
    candidate = referent if rng.random() < 0.5 else ("a" if referent == "b" else "b")
    slots = {"a": a, "b": b, "pr": pronoun, "w": words[which]}
    s1 = rng.choice(_WNLI_OPENERS) + _cap(template.format(**slots)) + rng.choice(_WNLI_CLOSERS)
    s2 = _cap(clause.format(c=slots[candidate], w=words[which]))
    label = "1" if candidate == referent else "0"
    return (s1, s2), [Example((s1, s2), label, label)]


def _wnli_rows(spec, examples, rng):
    return _pair_rows(spec, examples, "sentence1", "sentence2")


# --------------------------------------------------------------------------- assembly

_GENERATORS = {"CoLA": _cola, "SST-2": _sst, "MRPC": _mrpc, "STS-B": _sts, "QQP": _qqp,
               "MNLI": _mnli, "QNLI": _qnli, "RTE": _rte, "WNLI": _wnli}
_LAYOUTS = {"CoLA": _cola_rows, "SST-2": _sst_rows, "MRPC": _mrpc_rows, "STS-B": _sts_rows,
            "QQP": _qqp_rows, "MNLI": _mnli_rows, "QNLI": _qnli_rows, "RTE": _rte_rows,
            "WNLI": _wnli_rows}


def scaled_rows(default_rows, scale):
    """Rows a file gets at `scale` (never fewer than one)."""
    return max(1, int(round(default_rows * scale)))


def _rng(seed, *parts):
    # str seeds are hashed with SHA-512 by `random`, independent of PYTHONHASHSEED.
    return random.Random(":".join(["glue-sample", str(seed)] + [str(p) for p in parts]))


def _add_noise(task, examples, rng):
    """Give exactly round(LABEL_NOISE * n) rows a wrong label (a random score for STS-B)."""
    flips = int(round(LABEL_NOISE * len(examples)))
    if not flips:
        return examples
    examples = list(examples)
    for i in sorted(rng.sample(range(len(examples)), flips)):
        ex = examples[i]
        if LABELS[task] is None:
            wrong = ex.label
            while abs(wrong - ex.label) < 1.5:  # far enough off to be a real mistake
                wrong = round(rng.uniform(0.0, 5.0) * 5) / 5
        else:
            wrong = _other(rng, LABELS[task], ex.label)
        examples[i] = dataclasses.replace(ex, label=wrong)
    return examples


def _draw(task, spec, rows, seed, seen):
    """`rows` fresh examples for one file; `seen` keeps texts unique across a task's files."""
    rng = _rng(seed, task, spec.name)
    make = _GENERATORS[task]
    examples = []
    while len(examples) < rows:
        wanted = None
        for attempt in range(200):
            key, batch = make(rng, spec)
            wanted = batch[0].label if wanted is None else wanted
            # Retry with the same label, so exhausting the duplicates of one
            # class does not skew the label mix; give up on that after 100 tries.
            if key not in seen and (batch[0].label == wanted or attempt >= 100):
                break
        seen.add(key)
        examples.extend(batch)
    if task == "MNLI":
        rng.shuffle(examples)  # the three hypotheses of a premise are not adjacent in MNLI
    examples = examples[:rows]
    if spec.labelled:
        examples = _add_noise(task, examples, _rng(seed, task, spec.name, "noise"))
    return examples


def build_examples(task, seed=DEFAULT_SEED, scale=1.0):
    """{file name: [Example]} for one task, exactly as `generate` would write them."""
    seen = set()
    return {spec.name: _draw(task, spec, scaled_rows(spec.rows, scale), seed, seen)
            for spec in FILES[task]}


def _encode(header, rows, bom):
    lines = ([header] if header else []) + rows
    for line in lines:
        for cell in line:
            if "\t" in cell or "\n" in cell or "\r" in cell:
                raise ValueError(f"generated cell contains a tab or newline: {cell!r}")
    text = "".join("\t".join(line) + "\n" for line in lines)
    return (("\ufeff" if bom else "") + text).encode("utf-8")


def _write_atomic(path, data):
    """Write to a temporary file beside `path`, then rename: never a half-written file."""
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    # os.open with 0o666 honours the umask (mkstemp would leave the file 0600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _check_not_real_glue(out_dir, tasks):
    """Refuse to overwrite files this generator did not write (a real GLUE download)."""
    if os.path.exists(os.path.join(out_dir, MARKER_FILE)):
        return
    for task in tasks:
        for spec in FILES[task]:
            path = os.path.join(out_dir, task, spec.name)
            if os.path.exists(path):
                raise UserError(
                    f"{path} already exists and {out_dir} has no {MARKER_FILE}, so it may be real "
                    f"GLUE data; the sample will not overwrite it. Choose another --out_dir or "
                    f"delete {os.path.join(out_dir, task)} first")


def resolve_tasks(tasks):
    """Validated task names in GLUE order; accepts any case ('sst-2', 'mnli')."""
    if tasks is None:
        return list(TASKS)
    by_lower = {t.lower(): t for t in TASKS}
    chosen = []
    for name in tasks:
        name = name.strip()
        if name.lower() not in by_lower:
            raise UserError(f"unknown task {name!r}: choose from {','.join(TASKS)}")
        chosen.append(by_lower[name.lower()])
    if not chosen:
        raise UserError(f"no task given: choose from {','.join(TASKS)}")
    return [t for t in TASKS if t in chosen]


def generate(out_dir, seed=DEFAULT_SEED, scale=1.0, tasks=None):
    """Write the sample into `<out_dir>/<Task>/`; return {task: {file name: data rows}}."""
    if not isinstance(scale, (int, float)) or not 0 < scale <= MAX_SCALE:
        raise UserError(f"scale must be in (0, {MAX_SCALE:g}], got {scale!r}")
    chosen = resolve_tasks(tasks)
    _check_not_real_glue(out_dir, chosen)
    written = {}
    for task in chosen:
        task_dir = os.path.join(out_dir, task)
        os.makedirs(task_dir, exist_ok=True)
        examples = build_examples(task, seed, scale)
        counts = {}
        for spec in FILES[task]:
            header, rows, bom = _LAYOUTS[task](spec, examples[spec.name],
                                               _rng(seed, task, spec.name, "layout"))
            _write_atomic(os.path.join(task_dir, spec.name), _encode(header, rows, bom))
            counts[spec.name] = len(rows)
        written[task] = counts
    note = (f"This folder holds the toolkit's built-in synthetic GLUE SAMPLE (seed {seed}, scale "
            f"{scale:g}), written by experiments/glue/sample_data.py from its own word lists.\n"
            "It is NOT the GLUE benchmark: scores on it say nothing about GLUE.\n"
            "Run `sh download.sh` to fetch the real data.\n")
    _write_atomic(os.path.join(out_dir, MARKER_FILE), note.encode("utf-8"))
    return written


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m experiments.glue.sample_data",
        description="Write the built-in synthetic GLUE sample (all nine tasks, official layouts).")
    parser.add_argument("--out_dir", default="data",
                        help="folder that receives one sub-folder per task (default: data)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed; the same seed writes byte-identical files (default: {DEFAULT_SEED})")
    parser.add_argument("--scale", type=float, default=1.0,
                        help=f"multiply every file's row count, in (0, {MAX_SCALE:g}]; 1.0 gives 2,500 "
                             "train / 500 dev / 500 test rows per task (MNLI 4,500 / 600+600 / 500+500, "
                             "WNLI 4,000 train)")
    parser.add_argument("--tasks", default=",".join(TASKS),
                        help="comma-separated tasks to write (default: all nine)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    written = generate(args.out_dir, seed=args.seed, scale=args.scale,
                       tasks=[t for t in args.tasks.split(",") if t.strip()])
    for task, counts in written.items():
        files = " ".join(f"{name}={rows}" for name, rows in counts.items())
        print(f"{task:<6} {files}  -> {os.path.join(args.out_dir, task)}")
    print(f"wrote the built-in GLUE SAMPLE (synthetic, seed {args.seed}, scale {args.scale:g}) to "
          f"{args.out_dir}: NOT the real GLUE benchmark")
    return 0


if __name__ == "__main__":
    run_cli(main, sys.argv[1:])
