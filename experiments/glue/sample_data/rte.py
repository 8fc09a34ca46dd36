"""RTE: a news sentence and a short claim, entailment if the sentence guarantees it.

Five kinds of story (company news, obituary, acquisition, species discovery,
election) each supply claims that follow from the sentence and near-misses
that swap a name, a place, a number or the roles; a few claims come from an
unrelated story.
"""
from .common import (CITIES, COMPANIES, DAYS, FEMALE, MALE, SURNAMES, Example, pair_rows, pick_other,
                     random_person, train_dev_test, with_article)

FILES = train_dev_test()
LABELS = ("entailment", "not_entailment")

_ROLES = ("chief executive", "founder", "chairman", "spokesperson", "finance director")
_ILLNESSES = ("lung cancer", "heart failure", "pneumonia", "a stroke")
_PROFESSIONS = ("actor", "painter", "composer", "novelist", "architect")
_ANIMALS_RTE = ("frog", "bat", "orchid", "beetle", "lizard", "songbird")
_COUNTRIES = ("Peru", "Borneo", "Madagascar", "Gabon", "Ecuador", "Laos", "Colombia")


def _rte_company(rng):
    p, role = random_person(rng), rng.choice(_ROLES)
    c = rng.choice(COMPANIES)
    c2 = pick_other(rng, COMPANIES, c)
    city = rng.choice(CITIES)
    city2 = pick_other(rng, CITIES, city)
    n = rng.choice((200, 350, 500, 800, 1200))
    s1 = (f"{p}, the {role} of {c}, said on {rng.choice(DAYS)} that the company will open a new "
          f"factory in {city}, creating about {n} jobs.")
    yes = (f"{p} works for {c}.", f"{c} will open a factory in {city}.", f"{p} is the {role} of {c}.",
           f"A new factory will be built in {city}.", f"The factory will create about {n} jobs.",
           f"{c} will open a new factory in {city}, creating about {n} jobs.")
    no = (f"{p} works for {c2}.", f"{c2} will open a factory in {city}.",
          f"{c} will open a factory in {city2}.", f"A new factory will be built in {city2}.",
          f"The factory will create about {n * 3} jobs.",
          f"{p} is the {pick_other(rng, _ROLES, role)} of {c}.")
    return s1, yes, no


def _rte_obituary(rng):
    widow = f"{rng.choice(FEMALE)} {rng.choice(SURNAMES)}"
    husband = f"{rng.choice(MALE)} {widow.split()[1]}"
    stranger = f"{rng.choice(MALE)} {pick_other(rng, SURNAMES, widow.split()[1])}"
    prof, illness, age = rng.choice(_PROFESSIONS), rng.choice(_ILLNESSES), rng.randint(44, 90)
    s1 = (f"{widow}, the widow of the {prof} {husband}, has died of {illness} at age {age}, "
          f"according to the {husband} Foundation.")
    yes = (f"{widow} has died of {illness}.", f"{widow} was married to {husband}.",
           f"{widow} died at age {age}.", f"{husband} was {with_article(prof)}.",
           f"{widow} has died of {illness} at age {age}.")
    no = (f"{husband} has died of {illness}.", f"{widow} was married to {stranger}.",
          f"{widow} died at age {age + rng.randint(3, 12)}.",
          f"{husband} was {with_article(pick_other(rng, _PROFESSIONS, prof))}.",
          f"{widow} has died of {pick_other(rng, _ILLNESSES, illness)}.")
    return s1, yes, no


def _rte_deal(rng):
    a = rng.choice(COMPANIES)
    b = pick_other(rng, COMPANIES, a)
    city = rng.choice(CITIES)
    x = rng.choice((45, 120, 310, 640, 980))
    s1 = f"{a}, based in {city}, agreed on {rng.choice(DAYS)} to buy its rival {b} for ${x} million."
    yes = (f"{a} will acquire {b}.", f"{a} is based in {city}.", f"{b} is being bought.",
           f"{a} will pay ${x} million for {b}.", f"{a} agreed to buy its rival {b}.")
    no = (f"{b} will acquire {a}.", f"{a} is based in {pick_other(rng, CITIES, city)}.",
          f"{a} is being bought.", f"{b} is based in {city}.", f"{a} will pay ${x * 2} million for {b}.")
    return s1, yes, no


def _rte_discovery(rng):
    animal, country, city = rng.choice(_ANIMALS_RTE), rng.choice(_COUNTRIES), rng.choice(CITIES)
    s1 = (f"Scientists from the University of {city} have discovered a new species of {animal} "
          f"in the forests of {country}.")
    yes = (f"A new species of {animal} has been discovered.", f"The new species was found in {country}.",
           f"Scientists from the University of {city} found a new {animal}.",
           f"Scientists have discovered a new species of {animal} in the forests of {country}.")
    no = (f"A new species of {pick_other(rng, _ANIMALS_RTE, animal)} has been discovered.",
          f"The new species was found in {pick_other(rng, _COUNTRIES, country)}.",
          f"Scientists from the University of {pick_other(rng, CITIES, city)} found a new {animal}.")
    return s1, yes, no


def _rte_election(rng):
    winner, loser, city = random_person(rng), random_person(rng), rng.choice(CITIES)
    year, votes = rng.randint(1990, 2020), rng.choice((312, 1200, 4500, 87))
    s1 = f"{winner} was elected mayor of {city} in {year}, defeating {loser} by {votes} votes."
    yes = (f"{winner} won the election in {city}.", f"{loser} lost the election.",
           f"{winner} became mayor of {city}.", f"{winner} defeated {loser}.",
           f"{winner} was elected in {year}.", f"{winner} was elected mayor of {city}.")
    no = (f"{loser} won the election in {city}.", f"{winner} lost the election.",
          f"{winner} became mayor of {pick_other(rng, CITIES, city)}.", f"{loser} defeated {winner}.",
          f"{winner} was elected in {year + 4}.")
    return s1, yes, no


def make_example(rng, spec):
    """A news sentence and a short claim: entailment if the sentence guarantees the claim."""
    events = (_rte_company, _rte_obituary, _rte_deal, _rte_discovery, _rte_election)
    event = rng.choice(events)
    s1, yes, no = event(rng)
    if rng.random() < 0.5:
        s2, label = rng.choice(yes), "entailment"
    elif rng.random() < 0.2:
        # A claim about some other event entirely.
        s2, label = rng.choice(pick_other(rng, events, event)(rng)[1]), "not_entailment"
    else:
        s2, label = rng.choice(no), "not_entailment"
    return (s1, s2), [Example((s1, s2), label, label)]


def layout_rows(spec, examples, rng):
    return pair_rows(spec, examples, "sentence1", "sentence2")
