"""Pieces every task module of the GLUE sample shares.

Settings (seed, label noise, scale limit, marker file), the `SampleFile` and
`Example` records, detokenising and picking helpers, the name/city/company word
lists several tasks draw from, the pair layout of QNLI/RTE/WNLI, and the
plumbing of `generate`: per-file RNG derivation, scale checks, TSV encoding
and atomic writing.
"""
import random
from dataclasses import dataclass, field

from data_utils import files
from data_utils.errors import UserError

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


@dataclass(frozen=True)
class Example:
    """One generated row before layout: text columns, noisy and clean label, extras."""
    texts: tuple
    label: object
    clean_label: object
    meta: dict = field(default_factory=dict)  # layout extras: MNLI genre/parses, STS-B source


def train_dev_test(train_rows=2500):
    """The usual GLUE file set: labelled train and dev, unlabelled test (500 rows each)."""
    return (SampleFile("train.tsv", train_rows, True), SampleFile("dev.tsv", 500, True),
            SampleFile("test.tsv", 500, False))


# --------------------------------------------------------------------------- text helpers

_ATTACH = {".", ",", "?", "!", ";", ":", "n't", "'s"}


def join_tokens(tokens):
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


def cap(text):
    return text[:1].upper() + text[1:]


def with_article(word):
    return ("an " if word[:1] in "aeiou" else "a ") + word


def pick_other(rng, options, current):
    """A random option different from `current` (options must hold two or more)."""
    choice = rng.choice(options)
    while choice == current:
        choice = rng.choice(options)
    return choice


# --------------------------------------------------------------------------- shared word lists

FEMALE = ("Mary", "Susan", "Anna", "Laura", "Emma", "Julia", "Sarah", "Nina", "Clara", "Rosa",
          "Helen", "Alice", "Maria", "Lucy", "Grace", "Irene", "Joan", "Ruth")
MALE = ("John", "Peter", "David", "Tom", "Mark", "Paul", "James", "Henry", "Carl", "Oscar",
        "Victor", "Simon", "Daniel", "Hugo", "Leon", "Frank", "George", "Bill")
NAMES = FEMALE + MALE
SURNAMES = ("Smith", "Novak", "Garcia", "Tanaka", "Muller", "Okafor", "Rossi", "Silva",
            "Kowalski", "Jensen", "Dubois", "Larsen", "Moreau", "Ivanov", "Patel", "Brennan",
            "Hughes", "Lindqvist", "Costa", "Weber", "Nakamura", "Fischer", "Mendez", "Olsen")
CITIES = ("Lisbon", "Denver", "Oslo", "Nairobi", "Osaka", "Lyon", "Porto", "Dublin", "Austin",
          "Krakow", "Seattle", "Turin", "Leeds", "Perth", "Quito", "Tampa", "Bergen", "Graz")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
# Companies in MRPC's news pairs and RTE's business stories.
COMPANIES = ("Northwind", "Globex", "Acme Systems", "Vertex Energy", "Helios Bank",
             "Pinnacle Foods", "Orion Telecom", "Summit Airlines", "Blue River Mining",
             "Cobalt Motors", "Keystone Retail", "Atlas Pharma", "Meridian Media", "Harbor Lines")


def random_person(rng):
    return f"{rng.choice(NAMES)} {rng.choice(SURNAMES)}"


# --------------------------------------------------------------------------- layout

def single_sentence_test_rows(examples):
    """Unlabelled layout shared by CoLA and SST-2 test: index, sentence."""
    return ["index", "sentence"], [[str(i), ex.texts[0]] for i, ex in enumerate(examples)], False


def pair_rows(spec, examples, first, second):
    """Layout shared by QNLI, RTE and WNLI: index, two text columns, label."""
    header = ["index", first, second]
    rows = [[str(i), ex.texts[0], ex.texts[1]] + ([ex.label] if spec.labelled else [])
            for i, ex in enumerate(examples)]
    return header + (["label"] if spec.labelled else []), rows, False


# --------------------------------------------------------------------------- generation plumbing

def check_scale(scale):
    """Reject a row-count factor outside (0, MAX_SCALE]."""
    if not isinstance(scale, (int, float)) or not 0 < scale <= MAX_SCALE:
        raise UserError(f"scale must be in (0, {MAX_SCALE:g}], got {scale!r}")


def scaled_rows(default_rows, scale):
    """Rows a file gets at `scale` (never fewer than one)."""
    return max(1, int(round(default_rows * scale)))


def derive_rng(seed, *parts):
    """An independent random stream for one (seed, task, file, purpose)."""
    # str seeds are hashed with SHA-512 by `random`, independent of PYTHONHASHSEED.
    return random.Random(":".join(["glue-sample", str(seed)] + [str(p) for p in parts]))


def encode_tsv(header, rows, bom):
    """UTF-8 bytes of a TSV file: optional BOM, optional header line, '\\n' line ends."""
    lines = ([header] if header else []) + rows
    for line in lines:
        for cell in line:
            if "\t" in cell or "\n" in cell or "\r" in cell:
                raise ValueError(f"generated cell contains a tab or newline: {cell!r}")
    text = "".join("\t".join(line) + "\n" for line in lines)
    return (("\ufeff" if bom else "") + text).encode("utf-8")


def write_atomic(path, data):
    """Write bytes through the toolkit's atomic writer: never a half-written file."""
    files.write_atomic(path, lambda handle: handle.write(data), binary=True)
