"""The heterogeneous ACM, DBLP and IMDB graphs in the GTN format, as typed
:class:`~torch_geometric.data.HeteroData`.

The archives are those of the Graph Transformer Networks paper (Yun et al.,
2019, https://arxiv.org/abs/1911.06455), later used by LATTE (Tran & Gao,
2020, https://arxiv.org/abs/2009.08072). Each zip holds three pickles over
one global node index:

* ``edges.pkl``: four scipy sparse matrices, e.g. ACM ``[PA, AP, PS, SP]``;
* ``node_features.pkl``: a dense ``(num_nodes, F)`` array (binary bag of
  words; ACM's is 137 MB unpacked);
* ``labels.pkl``: ``[train, val, test]``, each a list of ``[node id, class]``.

Unpickling can run arbitrary code, so the zip's SHA-256 is checked against
the constants below *before* anything is unpickled, and the unpickler only
builds numpy arrays and scipy sparse matrices.

The converted graph has local ids per node type, an edge type per GTN
matrix named by its two type letters (``('paper', 'PA', 'author')`` holds
``PA[i, j] = 1`` as the edge ``paper i -> author j``; the reverse matrix is
the reverse edge type), sparse features ``x`` (a coalesced COO tensor),
labels ``y`` (``-1`` where unlabelled) and ``train/val/test_mask`` on the
target type. It is cached in ``GNNAGG_CACHE/gtn/`` as plain tensors.
"""
from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from .integrity import ChecksumError, sha256_of, verify_checksum
from .store import cache_dir, require_file

#: Bumped when the converted layout changes, so stale caches are not reused.
_FORMAT = 1


@dataclass(frozen=True)
class GTNSpec:
    """What one GTN archive holds.

    ``node_types`` lists ``(name, letter, count)`` in the order of the global
    index; ``edges`` names the four matrices by type letters (head, tail);
    ``split`` is the expected (train, val, test) size.
    """

    file: str
    sha256: str
    node_types: Tuple[Tuple[str, str, int], ...]
    edges: Tuple[str, ...]
    target: str
    num_classes: int
    split: Tuple[int, int, int]


GTN_DATASETS: Dict[str, GTNSpec] = {
    "ACM": GTNSpec(
        file="gtn/gtn-acm.zip",
        sha256="7455a10368ccf38fde31e2ca8a49ae05fa2c7246aa16124aa5b9ba8a9624ba7b",
        node_types=(("paper", "P", 3025), ("author", "A", 5912), ("subject", "S", 57)),
        edges=("PA", "AP", "PS", "SP"), target="paper", num_classes=3,
        split=(600, 300, 2125)),
    "DBLP": GTNSpec(
        file="gtn/gtn-dblp.zip",
        sha256="77574f7052f6cc7e6ea4ba940bcdd9c887cc3bc7d5fb1934a7e5f2720bbdb99b",
        node_types=(("author", "A", 4057), ("paper", "P", 14328), ("conference", "C", 20)),
        edges=("PA", "AP", "PC", "CP"), target="author", num_classes=4,
        split=(800, 400, 2857)),
    "IMDB": GTNSpec(
        file="gtn/gtn-imdb.zip",
        sha256="87d30c985010906bd54efb151f44834240af3d8c2dc86517b9343870216c81bd",
        node_types=(("movie", "M", 4661), ("director", "D", 2270), ("actor", "A", 5841)),
        edges=("MD", "DM", "MA", "AM"), target="movie", num_classes=3,
        split=(300, 300, 2339)),
}


class _ArrayUnpickler(pickle.Unpickler):
    # Defence in depth behind the checksum: only array/sparse-matrix classes.
    _allowed_prefixes = ("numpy", "scipy.sparse")

    def find_class(self, module, name):
        if module.split(".")[0] == "numpy" or module.startswith("scipy.sparse"):
            return super().find_class(module, name)
        if module in ("builtins", "copyreg", "__builtin__") and name in (
                "object", "list", "tuple", "dict", "int", "float", "slice", "_reconstructor"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"GTN pickle refers to {module}.{name}, "
                                     f"which a GTN archive never holds")


def _unpickle(archive: zipfile.ZipFile, member: str):
    with archive.open(member) as f:
        return _ArrayUnpickler(io.BufferedReader(f), encoding="latin1").load()


def _offsets(spec: GTNSpec) -> Dict[str, Tuple[str, int, int]]:
    """Type letter -> (type name, first global id, count)."""
    out, start = {}, 0
    for name, letter, count in spec.node_types:
        out[letter] = (name, start, count)
        start += count
    return out


def _convert(spec: GTNSpec, path: Path) -> Dict[str, Tensor]:
    """The archive as a flat dict of tensors (what the cache stores)."""
    import scipy.sparse as sp

    offsets = _offsets(spec)
    total = sum(c for _, _, c in spec.node_types)
    tensors: Dict[str, Tensor] = {}
    with zipfile.ZipFile(path) as archive:
        edges = _unpickle(archive, "edges.pkl")
        if len(edges) != len(spec.edges):
            raise ValueError(f"{path}: expected {len(spec.edges)} edge matrices, "
                             f"found {len(edges)}")
        for code, matrix in zip(spec.edges, edges):
            matrix = sp.coo_matrix(matrix)
            if matrix.shape != (total, total):
                raise ValueError(f"{path}: edge matrix {code} has shape {matrix.shape}, "
                                 f"expected {(total, total)}")
            (_, h0, hn), (_, t0, tn) = offsets[code[0]], offsets[code[1]]
            row, col = matrix.row.astype(np.int64) - h0, matrix.col.astype(np.int64) - t0
            if row.size and (row.min() < 0 or row.max() >= hn or col.min() < 0 or col.max() >= tn):
                raise ValueError(f"{path}: edge matrix {code} has entries outside "
                                 f"its node types' id ranges")
            order = np.lexsort((col, row))
            tensors[f"edge/{code}"] = torch.from_numpy(np.stack([row[order], col[order]]))

        # The dense feature array lives only inside this block.
        features = _unpickle(archive, "node_features.pkl")
        if features.shape[0] != total:
            raise ValueError(f"{path}: node_features has {features.shape[0]} rows, "
                             f"expected {total}")
        for letter, (name, start, count) in offsets.items():
            block = sp.coo_matrix(features[start:start + count])
            tensors[f"x_index/{name}"] = torch.from_numpy(
                np.stack([block.row, block.col]).astype(np.int64))
            tensors[f"x_value/{name}"] = torch.from_numpy(block.data.astype(np.float32))
        tensors["num_features"] = torch.tensor(features.shape[1])
        del features

        labels = _unpickle(archive, "labels.pkl")
    _, t0, tn = next(v for v in offsets.values() if v[0] == spec.target)
    y = torch.full((tn,), -1, dtype=torch.long)
    for split_name, rows in zip(("train", "val", "test"), labels):
        rows = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        local = rows[:, 0] - t0
        if local.size and (local.min() < 0 or local.max() >= tn):
            raise ValueError(f"{path}: {split_name} labels name nodes that are not "
                             f"'{spec.target}' nodes")
        tensors[f"split/{split_name}"] = torch.from_numpy(local)
        y[torch.from_numpy(local)] = torch.from_numpy(rows[:, 1])
    tensors["y"] = y
    return tensors


def _to_hetero(spec: GTNSpec, tensors: Dict[str, Tensor]) -> HeteroData:
    data = HeteroData()
    names = {letter: name for name, letter, _ in spec.node_types}
    num_features = int(tensors["num_features"])
    for name, _, count in spec.node_types:
        data[name].num_nodes = count
        data[name].x = torch.sparse_coo_tensor(
            tensors[f"x_index/{name}"], tensors[f"x_value/{name}"],
            (count, num_features), check_invariants=True).coalesce()
    for code in spec.edges:
        data[names[code[0]], code, names[code[1]]].edge_index = tensors[f"edge/{code}"]
    target = data[spec.target]
    target.y = tensors["y"]
    for split_name in ("train", "val", "test"):
        mask = torch.zeros(target.num_nodes, dtype=torch.bool)
        mask[tensors[f"split/{split_name}"]] = True
        target[f"{split_name}_mask"] = mask
    data.target_node_type = spec.target
    data.num_classes = spec.num_classes
    return data


def load_gtn(name: str, use_cache: bool = True) -> HeteroData:
    r"""Load a GTN heterogeneous graph (``'ACM'``, ``'DBLP'`` or ``'IMDB'``).

    The zip is found through :func:`gnnagg.datasets.store.require_file`
    (``GNNAGG_DATA/gtn/gtn-<name>.zip``), its SHA-256 checked before any
    unpickling, and the converted tensors cached in ``GNNAGG_CACHE/gtn/``.

    Args:
        name (str): the data set, case-insensitive.
        use_cache (bool, optional): read and write the converted cache.
            (default: :obj:`True`)

    Returns:
        HeteroData: with ``target_node_type`` and ``num_classes`` attributes.
    """
    if not isinstance(name, str):
        raise TypeError(f"data set name must be a string (got {type(name).__name__})")
    key = name.upper()
    if key not in GTN_DATASETS:
        raise ValueError(f"unknown GTN data set '{name}' (choose from {sorted(GTN_DATASETS)})")
    spec = GTN_DATASETS[key]
    cached = cache_dir("gtn") / f"{key.lower()}-{spec.sha256[:16]}-v{_FORMAT}.pt"
    tensors = None
    if use_cache and cached.is_file():
        try:
            tensors = torch.load(cached, weights_only=True)
        except Exception:  # a broken cache is rebuilt, not trusted
            tensors = None
    if tensors is None:
        path = require_file(spec.file, what=f"GTN {key}")
        verify_checksum(path, spec.sha256)
        tensors = _convert(spec, path)
        if use_cache:
            tmp = cached.with_name(cached.name + ".partial")
            torch.save(tensors, tmp)
            tmp.replace(cached)
    return _to_hetero(spec, tensors)


__all__ = ["GTN_DATASETS", "GTNSpec", "ChecksumError", "load_gtn", "verify_checksum", "sha256_of"]
