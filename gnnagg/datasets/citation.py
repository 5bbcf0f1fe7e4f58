"""Node-classification benchmarks of the DAGNN paper, loaded through PyG's
and OGB's own classes, plus the splits the paper uses.

Offline copies are read from ``GNNAGG_DATA`` (see :mod:`gnnagg.datasets.store`)
in the layout of the project's data folder:

=================  ==========================================================
name               files below ``GNNAGG_DATA``
=================  ==========================================================
Cora, CiteSeer,    ``planetoid/<Name>/raw/ind.<name>.{x,tx,allx,y,ty,ally,``
PubMed             ``graph,test.index}``
CS, Physics        ``gnn-benchmark/<Name>/raw/ms_academic_{cs,phy}.npz``
Computers, Photo   ``gnn-benchmark/<Name>/raw/amazon_electronics_<name>.npz``
ogbn-arxiv         ``ogb/ogbn_arxiv/`` (OGB's extracted release, with
                   ``RELEASE_v1.txt``)
=================  ==========================================================

They are copied into ``GNNAGG_CACHE`` (PyG writes ``processed/`` next to
``raw/``), verified against known checksums, and ``processed/`` is rebuilt
whenever they change (:mod:`gnnagg.datasets.store`); without them the classes
download the originals, and when that fails too a
:class:`~gnnagg.datasets.store.MissingDataError` names every missing file and
the places looked in.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

from .store import load_staged


@dataclass(frozen=True)
class _Source:
    """Where one data set lives and how PyG/OGB builds it."""
    name: str
    rel_dir: str
    raw_files: Tuple[str, ...]
    build: Callable[[Path], Data]


_PLANETOID_EXT = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def _planetoid(name: str) -> _Source:
    def build(path: Path) -> Data:
        from torch_geometric.datasets import Planetoid

        return Planetoid(root=str(path.parent), name=name, split="public")[0]

    return _Source(name, f"planetoid/{name}",
                   tuple(f"raw/ind.{name.lower()}.{e}" for e in _PLANETOID_EXT), build)


def _gnn_benchmark(name: str, cls_name: str, raw_file: str) -> _Source:
    # PyG's Coauthor and Amazon read <root>/<Name>/raw/<file>.npz, which is
    # the offline layout below gnn-benchmark/.
    def build(path: Path) -> Data:
        import torch_geometric.datasets as pyg_datasets

        return getattr(pyg_datasets, cls_name)(root=str(path.parent), name=name)[0]

    return _Source(name, f"gnn-benchmark/{name}", (f"raw/{raw_file}",), build)


_ARXIV_FILES = ("RELEASE_v1.txt", "raw/edge.csv.gz", "raw/node-feat.csv.gz",
                "raw/node-label.csv.gz", "split/time/train.csv.gz",
                "split/time/valid.csv.gz", "split/time/test.csv.gz")


def _build_arxiv(path: Path) -> Data:
    from ogb.nodeproppred import PygNodePropPredDataset
    from torch_geometric.utils import to_undirected

    if path.is_dir() and not (path / "RELEASE_v1.txt").exists() and \
            not any(p.is_file() for p in path.rglob("*")):
        # An empty folder left by a failed download would make OGB ask an
        # interactive question on the next try.
        shutil.rmtree(path)
    from .ogb import pyg_pickles

    with pyg_pickles():
        dataset = PygNodePropPredDataset(name="ogbn-arxiv", root=str(path.parent))
    data = dataset[0]
    split = dataset.get_idx_split()
    data.edge_index = to_undirected(data.edge_index, num_nodes=data.num_nodes)
    data.y = data.y.view(-1)
    for key, mask_name in (("train", "train_mask"), ("valid", "val_mask"), ("test", "test_mask")):
        mask = torch.zeros(data.num_nodes, dtype=torch.bool)
        mask[split[key]] = True
        data[mask_name] = mask
    return data


SOURCES: Dict[str, _Source] = {
    "cora": _planetoid("Cora"),
    "citeseer": _planetoid("CiteSeer"),
    "pubmed": _planetoid("PubMed"),
    "cs": _gnn_benchmark("CS", "Coauthor", "ms_academic_cs.npz"),
    "physics": _gnn_benchmark("Physics", "Coauthor", "ms_academic_phy.npz"),
    "computers": _gnn_benchmark("Computers", "Amazon", "amazon_electronics_computers.npz"),
    "photo": _gnn_benchmark("Photo", "Amazon", "amazon_electronics_photo.npz"),
    "ogbn-arxiv": _Source("ogbn-arxiv", "ogb/ogbn_arxiv", _ARXIV_FILES, _build_arxiv),
}
_ALIASES = {"coauthor-cs": "cs", "coauthor-physics": "physics",
            "amazon-computers": "computers", "amazon-photo": "photo",
            "arxiv": "ogbn-arxiv", "ogbn_arxiv": "ogbn-arxiv"}


def dataset_key(name: str) -> str:
    """The canonical lower-case key of a data set name (``'Cora'`` ->
    ``'cora'``, ``'Coauthor-CS'`` -> ``'cs'``)."""
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string (got {type(name).__name__})")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in SOURCES:
        raise ValueError(f"unknown dataset '{name}'; choose one of "
                         f"{[s.name for s in SOURCES.values()]}")
    return key


def row_normalize(x: Tensor) -> Tensor:
    """Divide each row by its sum (rows summing to zero stay zero), as
    PyG's ``NormalizeFeatures``."""
    total = x.sum(dim=-1, keepdim=True)
    return x / total.clamp(min=1e-12) if x.numel() else x


def load_citation(name: str, normalize_features: bool = True) -> Data:
    """One of the DAGNN paper's node-classification graphs as a PyG ``Data``.

    Args:
        name (str): ``'Cora'``, ``'CiteSeer'``, ``'PubMed'``, ``'CS'``,
            ``'Physics'``, ``'Computers'``, ``'Photo'`` or ``'ogbn-arxiv'``
            (case-insensitive).
        normalize_features (bool, optional): Row-normalise the features (the
            paper does so for all but ogbn-arxiv). (default: :obj:`True`)

    Planetoid graphs come with the public split's ``train_mask``,
    ``val_mask`` and ``test_mask``, ogbn-arxiv with its time split; for the
    others use :func:`random_split`.

    Raises:
        MissingDataError: the raw files are neither under ``GNNAGG_DATA``
            nor in the cache, and downloading them failed.
    """
    source = SOURCES[dataset_key(name)]
    data = load_staged(source.name, source.rel_dir, source.raw_files, source.build)
    if normalize_features:
        data.x = row_normalize(data.x)
    data.name = source.name
    return data


# Splits ######################################################################

def largest_connected_component(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Sorted ids of the nodes in the largest (weakly) connected component."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    row, col = edge_index.cpu().numpy()
    adj = sp.coo_matrix((np.ones(row.size), (row, col)), shape=(num_nodes, num_nodes))
    _, labels = connected_components(adj, directed=True, connection="weak")
    largest = np.bincount(labels).argmax()
    return torch.from_numpy(np.flatnonzero(labels == largest))


def random_split(y: Tensor, num_classes: int, train_per_class: int = 20,
                 val_per_class: int = 30, nodes: Optional[Tensor] = None,
                 generator: Optional[torch.Generator] = None,
                 authors_positions: bool = False) -> Tuple[Tensor, Tensor, Tensor]:
    """A stratified random split: ``train_per_class`` and ``val_per_class``
    labelled nodes of every class, the remaining candidates for testing.

    Args:
        y (Tensor): Node labels, ``[num_nodes]``.
        num_classes (int): Number of classes.
        train_per_class (int, optional): (default: :obj:`20`)
        val_per_class (int, optional): (default: :obj:`30`)
        nodes (Tensor, optional): Candidate node ids (e.g. the largest
            connected component); :obj:`None` means all nodes.
            (default: :obj:`None`)
        generator (torch.Generator, optional): Random source.
            (default: :obj:`None`)
        authors_positions (bool, optional): Reproduce the DAGNN authors'
            Amazon code, which draws *positions* inside ``nodes`` and uses
            them as node ids, so the split is taken from the first
            ``len(nodes)`` ids, with the labels of other nodes.
            (default: :obj:`False`)

    Returns:
        ``(train_mask, val_mask, test_mask)``, boolean ``[num_nodes]`` each.
    """
    num_nodes = y.size(0)
    candidates = torch.arange(num_nodes) if nodes is None else nodes.cpu().long()
    y_c = y.cpu()[candidates]
    parts: List[Tuple[Tensor, Tensor, Tensor]] = []
    for c in range(num_classes):
        positions = (y_c == c).nonzero().view(-1)
        if positions.numel() < train_per_class + val_per_class:
            raise ValueError(f"class {c} has {positions.numel()} candidate nodes, fewer than "
                             f"{train_per_class} + {val_per_class} for training and validation")
        positions = positions[torch.randperm(positions.numel(), generator=generator)]
        ids = positions if authors_positions else candidates[positions]
        parts.append((ids[:train_per_class], ids[train_per_class:train_per_class + val_per_class],
                      ids[train_per_class + val_per_class:]))
    masks = []
    for i in range(3):
        mask = torch.zeros(num_nodes, dtype=torch.bool)
        mask[torch.cat([p[i] for p in parts])] = True
        masks.append(mask.to(y.device))
    return masks[0], masks[1], masks[2]
