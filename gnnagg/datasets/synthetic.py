r"""Seeded multiset tasks that test whether an aggregator generalises from
small neighbourhoods to large ones.

Each example is a multiset of ``bits``-bit integers and a label computed from
it by a set function. The first task is the benchmark of
`"Learnable Commutative Monoids for Graph Neural Networks"
<https://arxiv.org/abs/2212.08541>`_ (Ong & Veličković, 2022): the
second-smallest element. The others are chosen so that a different
aggregator is "naturally" right for each (see :data:`TASKS`):

* ``'second_min'``: ``sorted(s)[1]`` (with repeats: ``[3, 3, 7] -> 3``).
  No fixed reduction (sum, mean, max) computes it; it is a commutative monoid
  over (smallest, second-smallest) pairs, so LCM and recurrent aggregators
  can represent it exactly at every size.
* ``'max'``: ``max(s)``. A control: the ``max`` aggregator solves it by
  construction at every size; a learned aggregator should at least match it.
* ``'parity'``: ``sum(s) mod 2`` (the parity of the number of odd elements).
  The XOR monoid computes it at every size; ``sum`` sees the count of odd
  elements but a decoder trained on counts up to 16 has no reason to get the
  parity of larger counts right; ``mean`` and ``max`` lose the count.
* ``'majority'``: whether strictly more than half of the elements are odd.
  ``mean`` computes the fraction at every size; ``sum`` would need the set
  size to compare against; a monoid would need an unbounded counter.

Two forms of the same data:

* :class:`SetBatch` / :func:`generate_sets`: sets as segments (elements with
  the ``index`` of their set, sorted), to call an aggregator directly as
  ``aggr(h, index, dim_size=num_sets)``. Fast; what the runner uses.
* :class:`SyntheticSetDataset`: a PyG ``InMemoryDataset`` of small graphs,
  one per set: the elements are leaf nodes with edges into one readout node
  (the last node, ``is_readout``), for use with message-passing layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, NamedTuple, Optional, Tuple, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, InMemoryDataset

SizeSpec = Union[int, Tuple[int, int]]


# The set functions ########################################################

def _segment_starts(index: Tensor, num_sets: int) -> Tuple[Tensor, Tensor]:
    counts = torch.bincount(index, minlength=num_sets)
    return torch.cumsum(counts, 0) - counts, counts


def _second_min(values: Tensor, index: Tensor, num_sets: int, bits: int) -> Tensor:
    # Sort by (set, value): the second element of each segment.
    order = torch.argsort(index * (1 << bits) + values)
    start, _ = _segment_starts(index, num_sets)
    return values[order][start + 1]


def _max(values: Tensor, index: Tensor, num_sets: int, bits: int) -> Tensor:
    out = torch.full((num_sets,), -1, dtype=values.dtype)
    return out.scatter_reduce(0, index, values, reduce="amax")


def _parity(values: Tensor, index: Tensor, num_sets: int, bits: int) -> Tensor:
    odd = torch.zeros(num_sets, dtype=torch.long).index_add_(0, index, values % 2)
    return odd % 2


def _majority(values: Tensor, index: Tensor, num_sets: int, bits: int) -> Tensor:
    odd = torch.zeros(num_sets, dtype=torch.long).index_add_(0, index, values % 2)
    _, counts = _segment_starts(index, num_sets)
    return (2 * odd > counts).long()


@dataclass(frozen=True)
class SetTask:
    """A set function to learn.

    Attributes:
        name: the task's name.
        label: ``(values, index, num_sets, bits) -> (num_sets,)`` long labels,
            for elements sorted by set.
        num_classes: ``(bits) -> int``, how many label values there are.
        min_size: the smallest set the function is defined on.
        why: one line on what the task separates.
    """
    name: str
    label: Callable[[Tensor, Tensor, int, int], Tensor]
    num_classes: Callable[[int], int]
    min_size: int
    why: str


TASKS: Dict[str, SetTask] = {t.name: t for t in [
    SetTask("second_min", _second_min, lambda bits: 1 << bits, 2,
            "the LCM paper's benchmark: a monoid over (min, 2nd min), beyond sum/mean/max"),
    SetTask("max", _max, lambda bits: 1 << bits, 1,
            "control: the max aggregator is exact by construction"),
    SetTask("parity", _parity, lambda bits: 2, 1,
            "the XOR monoid is exact at every size; sum must extrapolate a count mod 2"),
    SetTask("majority", _majority, lambda bits: 2, 1,
            "mean is exact at every size; a monoid needs an unbounded counter"),
]}


def get_task(task: Union[str, SetTask]) -> SetTask:
    """A :class:`SetTask` from its name (see :data:`TASKS`)."""
    if isinstance(task, SetTask):
        return task
    if not isinstance(task, str):
        raise TypeError(f"'task' must be a task name or SetTask (got {type(task).__name__})")
    if task not in TASKS:
        raise ValueError(f"unknown task '{task}' (expected one of {sorted(TASKS)})")
    return TASKS[task]


# Segment form #############################################################

class SetBatch(NamedTuple):
    """A batch of multisets as segments.

    Attributes:
        values: ``(E,)`` long, the integers in ``[0, 2**bits)``.
        index: ``(E,)`` long, the set of each element, sorted
            (``0, 0, 1, 1, 1, 2, ...``).
        y: ``(num_sets,)`` long labels.
        sizes: ``(num_sets,)`` long, the number of elements of each set.
        bits: bits per integer.
    """
    values: Tensor
    index: Tensor
    y: Tensor
    sizes: Tensor
    bits: int

    @property
    def num_sets(self) -> int:
        return self.y.numel()

    def bit_features(self) -> Tensor:
        """``(E, bits)`` float 0/1 features, most significant bit first."""
        return int_to_bits(self.values, self.bits)

    def select(self, sets: Tensor) -> "SetBatch":
        """The sub-batch of the given sets (in that order), re-indexed."""
        sets = torch.as_tensor(sets, dtype=torch.long)
        start = torch.cumsum(self.sizes, 0) - self.sizes
        sizes = self.sizes[sets]
        index = torch.repeat_interleave(torch.arange(sets.numel()), sizes)
        offset = torch.arange(index.numel()) - (torch.cumsum(sizes, 0) - sizes)[index]
        values = self.values[start[sets][index] + offset]
        return SetBatch(values, index, self.y[sets], sizes, self.bits)


def int_to_bits(values: Tensor, bits: int) -> Tensor:
    """``(E,)`` integers -> ``(E, bits)`` float 0/1, most significant first."""
    shifts = torch.arange(bits - 1, -1, -1, device=values.device)
    return ((values.unsqueeze(-1) >> shifts) & 1).float()


def _check_sizes(sizes: SizeSpec, min_size: int) -> Tuple[int, int]:
    if isinstance(sizes, int):
        lo = hi = sizes
    else:
        try:
            lo, hi = (int(s) for s in sizes)
        except (TypeError, ValueError):
            raise TypeError(f"'sizes' must be an int or a (min, max) pair (got {sizes!r})") from None
    if lo > hi:
        raise ValueError(f"set sizes ({lo}, {hi}): the minimum exceeds the maximum")
    if lo < min_size:
        raise ValueError(f"set size {lo} is below this task's minimum ({min_size})")
    return lo, hi


def generate_sets(task: Union[str, SetTask], num_sets: int, sizes: SizeSpec = (2, 16),
                  bits: int = 8, seed: int = 0) -> SetBatch:
    """``num_sets`` random multisets and their labels, deterministic in ``seed``.

    Set sizes are uniform in ``sizes = (min, max)`` (inclusive) or fixed
    (an int); elements are uniform in ``[0, 2**bits)``, independently (so
    repeats occur).

    Args:
        task (str or SetTask): the set function (see :data:`TASKS`).
        num_sets (int): number of sets.
        sizes (int or (int, int), optional): set size, or the inclusive range
            to draw it from. (default: :obj:`(2, 16)`)
        bits (int, optional): bits per integer, 1 to 16. (default: :obj:`8`)
        seed (int, optional): the seed; the global RNG is not touched.
            (default: :obj:`0`)
    """
    task = get_task(task)
    if not isinstance(num_sets, int) or num_sets < 0:
        raise ValueError(f"'num_sets' must be a non-negative int (got {num_sets!r})")
    if not isinstance(bits, int) or not 1 <= bits <= 16:
        raise ValueError(f"'bits' must be an int in [1, 16] (got {bits!r})")
    lo, hi = _check_sizes(sizes, task.min_size)
    gen = torch.Generator().manual_seed(int(seed))
    set_sizes = torch.randint(lo, hi + 1, (num_sets,), generator=gen)
    index = torch.repeat_interleave(torch.arange(num_sets), set_sizes)
    values = torch.randint(0, 1 << bits, (index.numel(),), generator=gen)
    y = task.label(values, index, num_sets, bits)
    return SetBatch(values, index, y, set_sizes, bits)


# Graph form ###############################################################

def set_to_graph(values: Tensor, y: Union[int, Tensor], bits: int):
    """One multiset as a PyG ``Data`` star graph: the elements are leaf
    nodes ``0..n-1`` with an edge each into the readout node ``n``.

    Attributes of the result: ``x`` ``(n + 1, bits)`` bit features (the
    readout node's are 0), ``value`` ``(n + 1,)`` (-1 at the readout),
    ``edge_index`` ``(2, n)``, ``is_readout`` ``(n + 1,)`` bool, ``y`` ``(1,)``.
    """
    n = values.numel()
    x = torch.cat([int_to_bits(values, bits), torch.zeros(1, bits)])
    edge_index = torch.stack([torch.arange(n), torch.full((n,), n)])
    is_readout = torch.zeros(n + 1, dtype=torch.bool)
    is_readout[n] = True
    value = torch.cat([values, values.new_full((1,), -1)])
    return Data(x=x, value=value, edge_index=edge_index, is_readout=is_readout,
                y=torch.as_tensor(y).view(1), num_nodes=n + 1)


class SyntheticSetDataset(InMemoryDataset):
    r"""A PyG ``InMemoryDataset`` of ``num_sets`` random multisets of
    ``bits``-bit integers as star graphs (elements -> one readout node, see
    :func:`set_to_graph`), labelled by a set function, as in `"Learnable
    Commutative Monoids for Graph Neural Networks"
    <https://arxiv.org/abs/2212.08541>`_. Built in memory, nothing is
    downloaded; the sets are those of :func:`generate_sets` with the same
    arguments (kept in :attr:`sets`).

    Example::

        from torch_geometric.loader import DataLoader
        from torch_geometric.nn import SimpleConv
        ds = SyntheticSetDataset('second_min', 1000, sizes=(2, 16))
        conv = SimpleConv(aggr='max')
        for data in DataLoader(ds, batch_size=64):
            h = conv(data.x, data.edge_index)[data.is_readout]   # (64, bits)

    Args:
        task (str): one of :data:`TASKS`.
        num_sets (int): number of graphs.
        sizes (int or (int, int), optional): set size or inclusive range.
            (default: :obj:`(2, 16)`)
        bits (int, optional): bits per integer. (default: :obj:`8`)
        seed (int, optional): the seed. (default: :obj:`0`)
        transform (callable, optional): PyG transform applied on access.
            (default: :obj:`None`)
    """

    def __init__(self, task: Union[str, SetTask], num_sets: int, sizes: SizeSpec = (2, 16),
                 bits: int = 8, seed: int = 0, transform: Optional[Callable] = None) -> None:
        super().__init__(None, transform)
        self.task = get_task(task)
        self.bits = bits
        self.sets = generate_sets(self.task, num_sets, sizes, bits, seed)
        ends = torch.cumsum(self.sets.sizes, 0).tolist()
        starts = [0] + ends[:-1]
        graphs = [set_to_graph(self.sets.values[s:e], self.sets.y[i], bits)
                  for i, (s, e) in enumerate(zip(starts, ends))]
        self.data, self.slices = self.collate(graphs)

    @property
    def num_classes(self) -> int:
        return self.task.num_classes(self.bits)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.task.name}', {len(self)}, bits={self.bits})"
