"""OGB data sets through gnnagg's data-location convention.

`"Open Graph Benchmark: Datasets for Machine Learning on Graphs"
<https://arxiv.org/abs/2005.00687>`_ (Hu et al., 2020).

:func:`load_graph_dataset` (``ogbg-*``) and :func:`load_node_dataset`
(``ogbn-*``) stage ``GNNAGG_DATA/ogb/<name with _>`` (raw files, split and
``RELEASE_v1.txt``, without which OGB asks an interactive question) into
``GNNAGG_CACHE/ogb`` and build OGB's own PyG data set classes there; when
the folder is in neither place OGB downloads it, and when that fails too a
:class:`~gnnagg.datasets.store.MissingDataError` names the missing files.

:class:`FastGraphLoader` batches graphs of an in-memory data set by slicing
its concatenated storage instead of collating ``Data`` objects one by one:
on molecules this is the dominant cost of a CPU epoch at batch size 32.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence, Tuple

import torch
from torch import Tensor

from .store import load_staged

#: Raw files OGB needs for a graph property data set (relative to its folder).
GRAPH_RAW_FILES = ("RELEASE_v1.txt", "raw/edge.csv.gz", "raw/graph-label.csv.gz",
                   "raw/node-feat.csv.gz", "raw/num-edge-list.csv.gz",
                   "raw/num-node-list.csv.gz")
#: Raw files OGB needs for a node property data set.
NODE_RAW_FILES = ("RELEASE_v1.txt", "raw/edge.csv.gz", "raw/node-feat.csv.gz",
                  "raw/node-label.csv.gz", "raw/num-edge-list.csv.gz",
                  "raw/num-node-list.csv.gz")


def pyg_pickles():
    """A context in which ``torch.load`` (``weights_only=True`` since torch
    2.6) may read the processed files that ogb 1.3.6 writes through PyG.
    Scoped to the block: nothing is registered process-wide."""
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import GlobalStorage

    return torch.serialization.safe_globals([DataEdgeAttr, DataTensorAttr, GlobalStorage])


def _folder(name: str, prefix: str) -> str:
    if not isinstance(name, str) or not name.startswith(prefix):
        raise ValueError(f"expected an OGB data set name starting with '{prefix}' (got {name!r})")
    return name.replace("-", "_")


def load_graph_dataset(name: str = "ogbg-molhiv"):
    """OGB's ``PygGraphPropPredDataset`` for ``name`` (e.g. ``'ogbg-molhiv'``),
    staged from ``GNNAGG_DATA/ogb`` into ``GNNAGG_CACHE/ogb``."""
    folder = _folder(name, "ogbg-")

    def build(path: Path):
        from ogb.graphproppred import PygGraphPropPredDataset

        with pyg_pickles():
            return PygGraphPropPredDataset(name=name, root=str(path.parent))

    return load_staged(f"OGB data set {name}", f"ogb/{folder}", GRAPH_RAW_FILES, build)


def load_node_dataset(name: str = "ogbn-arxiv"):
    """OGB's ``PygNodePropPredDataset`` for ``name`` (e.g. ``'ogbn-arxiv'``);
    large node sets are not in the offline folder and need the internet."""
    folder = _folder(name, "ogbn-")

    def build(path: Path):
        from ogb.nodeproppred import PygNodePropPredDataset

        with pyg_pickles():
            return PygNodePropPredDataset(name=name, root=str(path.parent))

    return load_staged(f"OGB data set {name}", f"ogb/{folder}", NODE_RAW_FILES, build)


def split_indices(dataset, subset: Optional[int] = None) -> Dict[str, Tensor]:
    """OGB's ``train``/``valid``/``test`` split of ``dataset`` as int64
    index tensors; with ``subset``, the first ``subset`` indices of each
    (quick runs and smoke tests)."""
    split = dataset.get_idx_split()
    return {k: torch.as_tensor(split[k], dtype=torch.long)[:subset]
            for k in ("train", "valid", "test")}


def node_graph(dataset, device) -> Tuple[Tensor, Tensor, Tensor]:
    """``(x, y, edge_index)`` of an OGB node property data set as OGB's
    full-batch examples train on it: one label per node (a vector) and the
    edges made undirected, on ``device``."""
    from torch_geometric.utils import to_undirected

    graph = dataset[0]
    edge_index = to_undirected(graph.edge_index, num_nodes=graph.num_nodes)
    return graph.x.to(device), graph.y.view(-1).to(device), edge_index.to(device)


class FastGraphLoader:
    r"""Mini-batches of graphs from an ``InMemoryDataset`` (or a subset of
    one, given as ``indices``), built by slicing the data set's concatenated
    tensors: the result equals ``torch_geometric.loader.DataLoader``'s
    :class:`~torch_geometric.data.Batch` on the fields ``x``, ``edge_index``,
    ``edge_attr``, ``y``, ``batch``, ``ptr`` and ``num_graphs``.

    Args:
        dataset (InMemoryDataset): The data set (its ``_data`` and
            ``slices`` are read; no transform may be set).
        indices (Tensor, optional): Graph ids to draw from (default: all).
        batch_size (int, optional): Graphs per batch. (default: :obj:`32`)
        shuffle (bool, optional): Reshuffle every epoch. (default: :obj:`False`)
        sampler (Sampler, optional): Yields positions into ``indices``
            (e.g. a ``DistributedSampler``); excludes ``shuffle``.
            (default: :obj:`None`)
        generator (torch.Generator, optional): Randomness of ``shuffle``.
            (default: :obj:`None`)
    """

    FIELDS = ("x", "edge_index", "edge_attr", "y")

    def __init__(self, dataset, indices: Optional[Tensor] = None, batch_size: int = 32,
                 shuffle: bool = False, sampler=None,
                 generator: Optional[torch.Generator] = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size})")
        if shuffle and sampler is not None:
            raise ValueError("give either shuffle=True or a sampler, not both")
        if getattr(dataset, "transform", None) is not None:
            raise ValueError("FastGraphLoader reads stored tensors and cannot apply a transform")
        data, slices = dataset._data, dataset.slices
        for key in ("x", "edge_index"):
            if key not in slices:
                raise ValueError(f"data set has no '{key}' to batch")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.sampler = sampler
        self.generator = generator
        self.store: Dict[str, Tensor] = {k: data[k] for k in self.FIELDS if k in slices}
        self.slices: Dict[str, Tensor] = {k: slices[k] for k in self.store}
        base = getattr(dataset, "_indices", None)
        base = torch.arange(len(slices["x"]) - 1) if base is None else torch.as_tensor(base)
        self.indices = base if indices is None else base[torch.as_tensor(indices, dtype=torch.long)]

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else self.indices.numel()
        return (n + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator:
        if self.sampler is not None:
            order = self.indices[torch.as_tensor(list(self.sampler), dtype=torch.long)]
        elif self.shuffle:
            order = self.indices[torch.randperm(self.indices.numel(), generator=self.generator)]
        else:
            order = self.indices
        for start in range(0, order.numel(), self.batch_size):
            yield self.collate(order[start:start + self.batch_size])

    @staticmethod
    def _ranges(starts: Tensor, counts: Tensor) -> Tensor:
        # Concatenation of arange(s, s + c) for each pair, without a loop.
        total = int(counts.sum())
        offsets = torch.repeat_interleave(starts - (torch.cumsum(counts, 0) - counts), counts)
        return torch.arange(total) + offsets

    def collate(self, ids: Sequence[int]):
        from torch_geometric.data import Batch

        ids = torch.as_tensor(ids, dtype=torch.long)
        node_start = self.slices["x"][ids]
        num_nodes = self.slices["x"][ids + 1] - node_start
        node_ids = self._ranges(node_start, num_nodes)
        edge_start = self.slices["edge_index"][ids]
        num_edges = self.slices["edge_index"][ids + 1] - edge_start
        edge_ids = self._ranges(edge_start, num_edges)
        ptr = torch.zeros(ids.numel() + 1, dtype=torch.long)
        torch.cumsum(num_nodes, 0, out=ptr[1:])
        # Stored edge indices are local to their graph: shift to batch rows.
        shift = torch.repeat_interleave(ptr[:-1], num_edges)
        out = Batch()
        out.x = self.store["x"][node_ids]
        out.edge_index = self.store["edge_index"][:, edge_ids] + shift
        if "edge_attr" in self.store:
            out.edge_attr = self.store["edge_attr"][edge_ids]
        if "y" in self.store:
            ys = self.slices["y"]
            out.y = self.store["y"][self._ranges(ys[ids], ys[ids + 1] - ys[ids])]
        out.batch = torch.repeat_interleave(torch.arange(ids.numel()), num_nodes)
        out.ptr = ptr
        out._num_graphs = ids.numel()
        return out
