"""QNLI: a question and a sentence, entailment if the sentence answers it.

Invented people, rivers, cities and species each come with a few questions
and candidate sentences tagged with the facts they state. Most wrong sentences
answer another question about the same subject, or the same question about a
look-alike subject, so a sentence alone does not give its label away.
"""
from .common import NAMES, Example, cap, pair_rows, pick_other, random_person, train_dev_test

FILES = train_dev_test()
LABELS = ("entailment", "not_entailment")

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
    return cap("".join(rng.choice(_SYLLABLES) for _ in range(parts)))


def _qnli_person(rng):
    p = f"{rng.choice(NAMES)} {_coin(rng, 3)}"
    city, city2, city3 = _coin(rng) + "burg", _coin(rng) + "a", _coin(rng) + "ov"
    year = rng.randint(1780, 1930)
    age = rng.randint(58, 92)
    org = f"{_coin(rng)} Institute"
    field_ = rng.choice(_FIELDS)
    field2 = pick_other(rng, _FIELDS, field_)
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
         (f"{pick_other(rng, _FOUNDERS, founders)} settled in the valley near {c} in {year + 200}.", ())),
    ], [
        ((f"What is the main industry of {c}?", "industry"),),
        ((f"The main industry of {c} is {industry}, which employs most of its residents.", ("industry",)),
         (f"{c} is also home to a small {pick_other(rng, _INDUSTRIES, industry)} museum.", ())),
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
         (f"The {x} was first described by {random_person(rng)} in {rng.randint(1800, 1990)}.", ())),
    ], [
        ((f"How large can the {x} grow?", "size"),),
        ((f"Adults of the {x} grow up to {rng.randint(3, 60)} centimetres long.", ("size",)),
         (f"Adults of the {x} are brown with pale spots.", ())),
    ]


_QNLI_PREFIXES = ("", "", "", "According to local records, ", "By most accounts, ",
                  "As several sources note, ")


def make_example(rng, spec):
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


def layout_rows(spec, examples, rng):
    return pair_rows(spec, examples, "question", "sentence")
