"""Tokenize text pairs with truncation in bounded memory.

A fast (Rust) tokenizer truncating a pair whose two texts are both long builds every overflow window of
the pair: memory grows with the product of the lengths (3 GB for two texts of 10,000 words, an
out-of-memory kill at 100,000). Truncation to `max_seq_len` keeps at most that many tokens of each text,
and for a pair whose texts both exceed it the kept tokens depend only on whether the first text is
longer, shorter or as long as the second (longest-first: the longer is cut to the shorter's length, then
both alike). So such a pair is first cut, at word boundaries, to a little over `max_seq_len` tokens a
text, keeping that order, and then tokenized as usual: the same ids and type ids, bounded memory. Pairs
with a short text (the tokenizer is fast there) and single texts go to the tokenizer unchanged.
"""
from typing import List, Optional

LONG_CHARS = 16          # a text is cut only when it has over LONG_CHARS × max_seq_len characters


def encode(tokenizer, texts_a: List[str], texts_b: Optional[List[str]], max_seq_len: int) -> dict:
    """`tokenizer(texts_a, texts_b, truncation=True, max_length=max_seq_len)` with input_ids and
    token_type_ids, the pairs whose two texts are both long cut first (module docstring)."""
    if texts_b is not None:
        texts_a, texts_b = list(texts_a), list(texts_b)
        limit = LONG_CHARS * max_seq_len
        for index, (a, b) in enumerate(zip(texts_a, texts_b)):
            if len(a) > limit and len(b) > limit:
                texts_a[index], texts_b[index] = cut_long_pair(tokenizer, a, b, max_seq_len)
    return tokenizer(texts_a, texts_b, truncation=True, max_length=max_seq_len, return_attention_mask=False,
                     return_token_type_ids=True)


def cut_long_pair(tokenizer, a: str, b: str, max_seq_len: int) -> tuple:
    """(a, b) cut at word boundaries to over `max_seq_len` tokens each, keeping which is longer in tokens (or
    that they are as long); unchanged when either has no more tokens than that or no such cut exists."""
    first, second = (tokenizer(text, add_special_tokens=False, return_offsets_mapping=True) for text in (a, b))
    n_a, n_b = len(first["input_ids"]), len(second["input_ids"])
    if min(n_a, n_b) <= max_seq_len + 1:
        return a, b
    if n_a == n_b:          # both cut at the same token count
        keep_a = keep_b = next((i for i in range(max_seq_len + 1, n_a) if _starts_word(first, i)
                                and _starts_word(second, i)), None)
    else:
        shorter, longer = (second, first) if n_a > n_b else (first, second)
        keep_short = _word_boundary(shorter, max_seq_len + 1)
        keep_long = None if keep_short is None else _word_boundary(longer, keep_short + 1)
        keep_a, keep_b = (keep_long, keep_short) if n_a > n_b else (keep_short, keep_long)
    if keep_a is None or keep_b is None:
        return a, b
    return a[:first["offset_mapping"][keep_a][0]], b[:second["offset_mapping"][keep_b][0]]


def _starts_word(encoding, index: int) -> bool:
    """Whether token `index` starts a new word: a prefix ending before it re-tokenizes to exactly the tokens
    before it."""
    words = encoding.word_ids()
    return 0 < index < len(words) and words[index] != words[index - 1]


def _word_boundary(encoding, at_least: int) -> Optional[int]:
    """The first token index ≥ `at_least` that starts a new word; None when there is none."""
    return next((i for i in range(max(at_least, 1), len(encoding["input_ids"])) if _starts_word(encoding, i)), None)
