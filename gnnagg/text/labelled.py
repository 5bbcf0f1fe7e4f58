"""Labelled examples of encoded texts (single sentences or sentence pairs)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from .encoder import EncodedTexts

__all__ = ["LabelledTexts"]


@dataclass
class LabelledTexts:
    """The examples of one split: token states of the texts ``a`` (and of
    the second texts ``b`` of sentence pairs) and the labels ``y`` (int64
    classes or float scores), row ``i`` of each belonging together."""
    a: EncodedTexts
    b: Optional[EncodedTexts]
    y: Tensor

    def __post_init__(self):
        n = len(self.a)
        if (self.b is not None and len(self.b) != n) or len(self.y) != n:
            raise ValueError(f"{n} texts, {len(self.b) if self.b is not None else 'no'} second "
                             f"texts and {len(self.y)} labels: every example needs one of each")

    @classmethod
    def encode(cls, encoder: Any, texts_a: Sequence[str], texts_b: Optional[Sequence[str]],
               labels: Any, desc: str = "encoding") -> "LabelledTexts":
        """Encode texts (pairs when ``texts_b`` is given) with a
        :class:`~gnnagg.text.FrozenEncoder` (its cache first)."""
        b = encoder.encode(texts_b, desc=f"{desc} b") if texts_b is not None else None
        return cls(encoder.encode(texts_a, desc=desc), b, torch.as_tensor(labels))

    def __len__(self) -> int:
        return len(self.a)

    @property
    def pair(self) -> bool:
        return self.b is not None

    def subset(self, index: Sequence[int]) -> "LabelledTexts":
        """The examples at ``index``, in that order."""
        index = torch.as_tensor(index, dtype=torch.long)
        return LabelledTexts(self.a.subset(index), None if self.b is None else self.b.subset(index),
                             self.y[index])

    def inputs(self, index: Sequence[int], dtype: torch.dtype = torch.float32) -> Tuple[Tensor, ...]:
        """``(x, mask)`` padded states of the examples at ``index``, and
        ``(x_pair, mask_pair)`` after them for pairs: the arguments of
        :class:`gnnagg.models.SentenceClassifier`."""
        out = self.a.padded(index, dtype)
        return out + self.b.padded(index, dtype) if self.b is not None else out

    def split(self, fraction: float, seed: int = 0) -> Tuple["LabelledTexts", "LabelledTexts"]:
        """``(rest, held_out)``: ``round(fraction * n)`` examples (at least
        one) drawn without replacement by ``seed``, each part in the
        original order."""
        if not 0.0 < fraction < 1.0:
            raise ValueError(f"fraction must be in (0, 1) (got {fraction})")
        n = len(self)
        n_out = max(1, int(round(fraction * n)))
        if n - n_out < 1:
            raise ValueError(f"{n} examples are too few to hold out {fraction:.0%} of them")
        # NumPy's generator: the held-out rows of earlier GLOT results
        perm = np.random.default_rng(seed).permutation(n)
        return self.subset(np.sort(perm[n_out:])), self.subset(np.sort(perm[:n_out]))
