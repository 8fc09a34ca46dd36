"""WNLI: Winograd-style pronoun sentences, 1 if the rewrite names the right referent.

Schemas with two special words (one per reading) are filled with typed
candidate pairs or first names, and padded with context sentences so train,
dev and test come from the same distribution.
"""
from .common import FEMALE, MALE, Example, cap, pair_rows, pick_other, train_dev_test

FILES = train_dev_test(4000)
LABELS = ("0", "1")

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


def make_example(rng, spec):
    """A pronoun sentence and a rewrite naming one candidate: 1 if that is the referent."""
    template, clause, words, refs, pairs = rng.choice(_WNLI_SCHEMAS)
    a, b, pronoun = rng.choice(pairs)
    which = 0 if rng.random() < 0.75 else 1
    referent = refs[which]
    if pronoun in ("he", "she"):
        names = rng.random()
        if names < 0.35:
            # A man and a woman: the pronoun's gender alone picks the referent.
            a, b = rng.choice(MALE), rng.choice(FEMALE)
            if rng.random() < 0.5:
                a, b = rng.choice(FEMALE), rng.choice(MALE)
            pronoun = "he" if {"a": a, "b": b}[referent] in MALE else "she"
        elif names < 0.5:
            # Two names of the same gender: only the special word resolves the pronoun.
            same = MALE if pronoun == "he" else FEMALE
            a = rng.choice(same)
            b = pick_other(rng, same, a)
    candidate = referent if rng.random() < 0.5 else ("a" if referent == "b" else "b")
    slots = {"a": a, "b": b, "pr": pronoun, "w": words[which]}
    s1 = rng.choice(_WNLI_OPENERS) + cap(template.format(**slots)) + rng.choice(_WNLI_CLOSERS)
    s2 = cap(clause.format(c=slots[candidate], w=words[which]))
    label = "1" if candidate == referent else "0"
    return (s1, s2), [Example((s1, s2), label, label)]


def layout_rows(spec, examples, rng):
    return pair_rows(spec, examples, "sentence1", "sentence2")
