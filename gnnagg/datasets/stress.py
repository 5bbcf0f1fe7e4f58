"""The distractor stress test of GLOT (arXiv 2603.03389, Sec. "stress test").

Each sequence has exactly ``length`` words. A contiguous *signal* block sits
at a random offset; the rest of the sequence (a fraction ``ratio`` of it) is
random distractor words:

* label 1: ``[context] [noise words] [noun]`` (no negation);
* label 0: ``[context] [negation] [noise words] [noun]``.

Noise words pad the signal block to ``length - round(ratio * length)`` words,
so both labels have the same length and the only cue is whether a negation
appears. Noise and distractor words come from a vocabulary that holds no
negation. All vocabulary words are single WordPiece tokens in BERT's uncased
vocabulary, so ``length`` words are ``length`` tokens (plus two special ones).

Generation is deterministic in ``seed`` (NumPy's ``default_rng``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Tuple

import numpy as np

CONTEXTS: Tuple[Tuple[str, ...], ...] = (
    ("the", "folder", "includes"), ("the", "package", "contains"),
    ("the", "report", "lists"), ("the", "box", "holds"), ("this", "order", "has"),
)
NEGATIONS: Tuple[str, ...] = ("not", "never", "without", "excluding")
NOUNS: Tuple[str, ...] = ("apples", "files", "photos", "tickets", "letters", "keys",
                          "books", "coins")
DISTRACTORS: Tuple[str, ...] = tuple("""
blue green river mountain table window garden music paper light morning city
road market summer winter coffee chair doctor teacher school station bridge
forest ocean cloud yellow small large quick slow happy simple early late
north south village island bottle camera engine planet letter story song
picture kitchen office number family friend animal water stone metal glass
orange purple silver golden wooden quiet bright warm cold soft heavy
people street house car train plane boat horse bird tree flower grass
game ball team player night evening week month year hour minute
""".split())


@dataclass
class StressSplit:
    """Sequences (space-joined words) and their labels (int64, 0 or 1)."""
    texts: List[str]
    labels: np.ndarray
    ratio: float

    def __len__(self) -> int:
        return len(self.texts)


def _check(n: int, ratio: float, length: int) -> int:
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int (got {n!r})")
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1) (got {ratio!r})")
    signal = length - int(round(ratio * length))
    shortest = max(len(c) for c in CONTEXTS) + 2  # context, negation, noun
    if signal < shortest:
        raise ValueError(f"length={length} with ratio={ratio} leaves {signal} signal words; "
                         f"at least {shortest} are needed")
    return signal


def make_stress(n: int, ratio: float, length: int = 128, seed: int = 0) -> StressSplit:
    """``n`` stress-test sequences with a fraction ``ratio`` of distractors.

    Args:
        n (int): number of sequences; labels alternate 1, 0 before shuffling,
            so classes are balanced.
        ratio (float): fraction of the ``length`` words that are distractors.
        length (int, optional): words per sequence. (default: :obj:`128`)
        seed (int, optional): random seed. (default: :obj:`0`)
    """
    signal_len = _check(n, ratio, length)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2 == 0).astype(np.int64)
    vocab = np.asarray(DISTRACTORS)
    texts = []
    for label in labels:
        context = CONTEXTS[rng.integers(len(CONTEXTS))]
        head = list(context) if label == 1 else list(context) + [NEGATIONS[rng.integers(len(NEGATIONS))]]
        noise = vocab[rng.integers(len(vocab), size=signal_len - len(head) - 1)].tolist()
        block = head + noise + [NOUNS[rng.integers(len(NOUNS))]]
        words = vocab[rng.integers(len(vocab), size=length)].tolist()
        start = int(rng.integers(length - signal_len + 1))
        words[start:start + signal_len] = block
        texts.append(" ".join(words))
    return StressSplit(texts, labels, float(ratio))


def stress_splits(ratio: float, n_train: int = 2000, n_test: int = 500, length: int = 128,
                  seed: int = 0) -> Tuple[StressSplit, StressSplit]:
    """The paper's train/test sizes (2,000 / 500), from independent streams."""
    ss = np.random.SeedSequence([seed, int(round(ratio * 1000)), length])
    train_seed, test_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(2))
    return (make_stress(n_train, ratio, length, train_seed),
            make_stress(n_test, ratio, length, test_seed))
