"""Sentence and sentence-pair classifiers over a frozen encoder's token states."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional, Tuple

import torch
from torch import Tensor

from ..nn.pooling import TokenPooling, resolve_pooling

__all__ = ["SentenceClassifier", "PAIR_FEATURES"]

#: How two pooled sentences form the head's input: ``name -> (function,
#: width in sentence vectors)``. A linear head on ``'concat'`` ``[u, v]``
#: (the GLOT paper's, https://arxiv.org/abs/2603.03389) scores a pair as
#: f(u) + g(v), without any interaction; ``'sbert'`` ``[u, v, |u - v|, u * v]``
#: is Sentence-BERT's (Reimers & Gurevych, 2019, https://arxiv.org/abs/1908.10084).
PAIR_FEATURES: Dict[str, Tuple[Callable[[Tensor, Tensor], Tensor], int]] = {
    "concat": (lambda u, v: torch.cat([u, v], dim=-1), 2),
    "sbert": (lambda u, v: torch.cat([u, v, (u - v).abs(), u * v], dim=-1), 4),
}


class SentenceClassifier(torch.nn.Module):
    r"""A pooler and a linear head: :math:`\mathbf{W}\,\mathrm{pool}(X) + \mathbf{b}`
    for one sentence, :math:`\mathbf{W}\,\phi(\mathrm{pool}(X_a), \mathrm{pool}(X_b)) + \mathbf{b}`
    for a pair, the two sentences sharing the pooler.

    Args:
        in_channels (int): token state size.
        out_channels (int): classes (1 for a regression score).
        pooling (str or TokenPooling, optional): any name
            :func:`gnnagg.nn.resolve_pooling` knows (``'glot'``, ``'mean'``,
            ...), or a built pooler. (default: :obj:`'mean'`)
        pair (str, optional): :obj:`None` for single sentences, else the
            pair features :math:`\phi`, a name in :data:`PAIR_FEATURES`.
            (default: :obj:`None`)
        pooling_kwargs (dict, optional): arguments of the pooler (e.g.
            ``{'tau': 0.6, 'edges': 'none'}`` for GLOT). (default: :obj:`None`)
    """

    def __init__(self, in_channels: int, out_channels: int, pooling: Any = "mean",
                 pair: Optional[str] = None, pooling_kwargs: Optional[Dict[str, Any]] = None):
        super().__init__()
        if pair is not None and pair not in PAIR_FEATURES:
            raise ValueError(f"unknown pair features '{pair}'; choose from {sorted(PAIR_FEATURES)}")
        if isinstance(out_channels, bool) or not isinstance(out_channels, int) or out_channels < 1:
            raise ValueError(f"out_channels must be a positive int (got {out_channels!r})")
        if isinstance(pooling, TokenPooling):
            if pooling_kwargs:
                raise TypeError("pooling_kwargs given with a built pooler")
            self.pooler = pooling
        else:
            self.pooler = resolve_pooling(pooling, in_channels, **(pooling_kwargs or {}))
        self.in_channels, self.out_channels, self.pair = in_channels, out_channels, pair
        width = PAIR_FEATURES[pair][1] if pair is not None else 1
        self.head = torch.nn.Linear(self.pooler.out_channels * width, out_channels)

    def reset_parameters(self) -> None:
        self.pooler.reset_parameters()
        self.head.reset_parameters()

    def forward(self, x: Tensor, mask: Tensor, x_pair: Optional[Tensor] = None,
                mask_pair: Optional[Tensor] = None) -> Tensor:
        """``(B, out_channels)`` scores of padded ``(B, L, d)`` token states
        and their ``(B, L)`` mask (and the second sentences' for pairs)."""
        if (self.pair is None) != (x_pair is None) or (x_pair is None) != (mask_pair is None):
            raise ValueError("give x_pair and mask_pair exactly when the model has pair "
                             f"features (pair={self.pair!r})")
        z = self.pooler(x, mask)
        if self.pair is not None:
            if x_pair.size(0) != x.size(0):
                raise ValueError(f"{x.size(0)} first sentences but {x_pair.size(0)} second ones")
            z = PAIR_FEATURES[self.pair][0](z, self.pooler(x_pair, mask_pair))
        return self.head(z)

    def __repr__(self) -> str:
        pair = f", pair='{self.pair}'" if self.pair is not None else ""
        return f"{self.__class__.__name__}({self.pooler!r}, {self.out_channels}{pair})"
