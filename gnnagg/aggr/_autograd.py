"""When the hand-written backward passes cannot be used, and what replaces them.

The learned aggregators run their recurrences through ``torch.autograd.Function``
subclasses with hand-written first-order backward passes (fast, little memory).
Those have no forward-mode (``jvp``) or ``vmap`` rules, and their backward
passes are not themselves differentiable. Two fallbacks keep every autograd
feature working:

* under ``torch.func`` transforms (``grad``, ``jacrev``, ``jacfwd``, ``vmap``)
  and forward-mode AD (:mod:`torch.autograd.forward_ad`), the aggregators run
  the same arithmetic as plain differentiable torch ops
  (:func:`plain_autograd_required`);
* when a backward pass itself is recorded (``create_graph=True``: double
  backward, gradient penalties, forces as gradients of an energy), the
  hand-written backward recomputes the forward with plain ops and
  differentiates that (:func:`recompute_grads`).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torch.autograd import forward_ad


def plain_autograd_required() -> bool:
    """Whether a ``torch.func`` transform or a forward-mode AD level is
    active, so that the custom ``autograd.Function`` paths must not be used."""
    if torch._C._functorch.peek_interpreter_stack() is not None:
        return True
    return getattr(forward_ad, "_current_level", -1) >= 0


def recompute_grads(fn: Callable[..., object], inputs: Sequence[Optional[Tensor]],
                    needs: Sequence[bool], grads: Sequence[Optional[Tensor]]
                    ) -> Tuple[Optional[Tensor], ...]:
    """Gradients of ``fn(*inputs)`` w.r.t. the inputs flagged in ``needs``,
    with ``create_graph=True``.

    Called from a hand-written ``backward`` when grad mode is on there, i.e.
    when the caller asked for a differentiable gradient: ``fn`` recomputes the
    forward pass with plain differentiable ops from the saved inputs (which
    keep their autograd history), so the result is differentiable w.r.t. the
    inputs and the incoming gradients alike.
    """
    with torch.enable_grad():
        outs = fn(*inputs)
    if isinstance(outs, Tensor):
        outs = (outs,)
    wrt: List[Tensor] = []
    slots: List[int] = []
    for i, (t, need) in enumerate(zip(inputs, needs)):
        if need and t is not None and t.requires_grad:
            wrt.append(t)
            slots.append(i)
    pairs = [(o, g) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
    result: List[Optional[Tensor]] = [None] * len(inputs)
    if not wrt or not pairs:
        return tuple(result)
    got = torch.autograd.grad([o for o, _ in pairs], wrt, [g for _, g in pairs],
                              create_graph=True, allow_unused=True)
    for i, g in zip(slots, got):
        result[i] = g if g is not None else torch.zeros_like(inputs[i])
    return tuple(result)
