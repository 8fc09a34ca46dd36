"""MNLI: premise/hypothesis pairs in ten genres, three labels, with parse trees.

Each premise comes with one entailed, one neutral and one contradicting
hypothesis, written as small trees so the binary and PTB parse columns match
the text. Premise kinds: person-verb-thing with modifiers, negated premises
(where adding detail keeps entailment), person-verb-person (swapped roles are
neutral) and two conjoined clauses (cross-paired hypotheses are neutral).
Train and the matched files draw from five genres, the mismatched files from
five others; dev rows carry five annotator labels.
"""
from .common import Example, SampleFile, cap, join_tokens, pick_other

FILES = (SampleFile("train.tsv", 4500, True, "matched"),
         SampleFile("dev_matched.tsv", 600, True, "matched"),
         SampleFile("dev_mismatched.tsv", 600, True, "mismatched"),
         SampleFile("test_matched.tsv", 500, False, "matched"),
         SampleFile("test_mismatched.tsv", 500, False, "mismatched"))
LABELS = ("contradiction", "neutral", "entailment")

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
        return (label, cap(kids))
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
        other_reason = pick_other(rng, g["reasons"], " ".join(f["reason"])).split()
    else:
        other_reason = rng.choice(g["reasons"]).split()
    neu.append(_s(subj, _vp(v, _mnli_obj(f), *full_mods, _phrase(other_reason))))
    neu.append(_s(_np(pick_other(rng, g["people"], " ".join(f["subj"])).split()),
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
    other_thing = dict(f, thing=pick_other(rng, g["things"], " ".join(f["thing"])).split(), adj=None)
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
        neu.append(_s(_np(pick_other(rng, g["people"], " ".join(f["subj"])).split()),
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
    b = pick_other(rng, g["people"], " ".join(a)).split()
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
    third = pick_other(rng, [p for p in g["people"] if p.split() != b], " ".join(a)).split()
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


def make_example(rng, spec):
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
    p_text = cap(join_tokens(_words(premise)))
    examples = []
    for label, options in (("entailment", ent), ("neutral", neu), ("contradiction", con)):
        hyp = rng.choice(options)
        meta = {"genre": genre, "parses": (_binary(premise), _binary(hyp),
                                           f"(ROOT {_ptb(premise)})", f"(ROOT {_ptb(hyp)})")}
        h_text = cap(join_tokens(_words(hyp)))
        examples.append(Example((p_text, h_text), label, label, meta))
    return p_text, examples


def layout_rows(spec, examples, rng):
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
    others = [label for label in LABELS if label != gold]
    labels = [gold] * agree + [rng.choice(others) for _ in range(5 - agree)]
    rng.shuffle(labels)
    return labels
