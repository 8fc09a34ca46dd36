"""CoLA: single sentences, 1 if grammatically acceptable and 0 if not.

A small grammar builds clauses in eleven constructions (tenses, passive,
negation, questions, copula, relative clauses with an attractor noun); about a
third are then broken by one agreement, verb-form, word-order, determiner,
dropped-verb or extra-argument error. Labelled files use CoLA's headerless
layout: source code, label, author's star, sentence.
"""
from .common import NAMES, Example, cap, join_tokens, single_sentence_test_rows, train_dev_test

FILES = train_dev_test()
LABELS = ("0", "1")


def _sentence(tokens, end="."):
    return cap(join_tokens(list(tokens) + [end]))


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
        return [rng.choice(NAMES)]
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


def make_example(rng, spec):
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


def layout_rows(spec, examples, rng):
    if not spec.labelled:
        return single_sentence_test_rows(examples)
    rows = [[rng.choice(_COLA_SOURCES), ex.label, "*" if ex.label == "0" else "", ex.texts[0]]
            for ex in examples]
    return None, rows, False
