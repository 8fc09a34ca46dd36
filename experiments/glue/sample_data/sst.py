"""SST-2: lower-cased, tokenised movie-review snippets, 1 positive and 0 negative.

Plain verdicts mix with negations that flip the label, negations that do not
("never fails to be ..."), contrasts whose verdict clause is not the last one,
and noun-phrase or verb forms. Labelled rows end with a space before the tab,
as in the real SST-2 files.
"""
from .common import Example, single_sentence_test_rows, train_dev_test, with_article

FILES = train_dev_test()
LABELS = ("0", "1")


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


def make_example(rng, spec):
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
            text = with_article(f"{intens}{adj} {noun}")
        else:
            text = with_article(f"{adj} and {adj2} {noun}")
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


def layout_rows(spec, examples, rng):
    if not spec.labelled:
        return single_sentence_test_rows(examples)
    # Real SST-2 train/dev sentences end with a space before the tab.
    return ["sentence", "label"], [[ex.texts[0] + " ", ex.label] for ex in examples], False
