"""The GTN loaders on the real archives (via GNNAGG_DATA), and the checksum
refusal on a forged one."""
import io
import pickle
import zipfile

import pytest
import torch

from gnnagg.datasets import MissingDataError
from gnnagg.datasets.gtn import GTN_DATASETS, ChecksumError, _ArrayUnpickler, load_gtn

needs_data = pytest.mark.data("gtn")  # the GTN zips

EXPECTED = {
    "ACM": ({"paper": 3025, "author": 5912, "subject": 57}, "paper", 3, (600, 300, 2125),
            {"PA": 9936, "AP": 9936, "PS": 3025, "SP": 3025}, 1902),
    "DBLP": ({"author": 4057, "paper": 14328, "conference": 20}, "author", 4, (800, 400, 2857),
             {"PA": 19645, "AP": 19645, "PC": 14328, "CP": 14328}, 334),
    "IMDB": ({"movie": 4661, "director": 2270, "actor": 5841}, "movie", 3, (300, 300, 2339),
             {"MD": 4661, "DM": 4661, "MA": 13983, "AM": 13983}, 1256),
}


@needs_data
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_node_counts_edges_and_splits(name):
    nodes, target, classes, split, edges, features = EXPECTED[name]
    data = load_gtn(name)
    assert {t: data[t].num_nodes for t in data.node_types} == nodes
    assert data.target_node_type == target and data.num_classes == classes
    store = data[target]
    sizes = tuple(int(store[f"{s}_mask"].sum()) for s in ("train", "val", "test"))
    assert sizes == split
    # Splits are disjoint and labelled; unlabelled nodes carry -1.
    union = store.train_mask | store.val_mask | store.test_mask
    assert int(union.sum()) == sum(split)
    assert bool((store.y[union] >= 0).all()) and bool((store.y[~union] == -1).all())
    assert set(store.y[union].tolist()) == set(range(classes))
    assert {rel[1]: ei.size(1) for rel, ei in data.edge_index_dict.items()} == edges
    for (src, rel, dst), ei in data.edge_index_dict.items():
        assert int(ei[0].max()) < nodes[src] and int(ei[1].max()) < nodes[dst]
        # Every relation comes with its reverse.
        reverse = data[dst, rel[::-1], src].edge_index
        fwd = set(map(tuple, ei.t().tolist()))
        assert fwd == set(map(tuple, reverse.flip(0).t().tolist()))
    for t in data.node_types:
        x = data[t].x
        assert x.is_sparse and x.shape == (nodes[t], features)


@needs_data
def test_fresh_conversion_equals_cache(tmp_path, monkeypatch):
    cached = load_gtn("DBLP")
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path))
    fresh = load_gtn("DBLP", use_cache=False)
    assert not list(tmp_path.rglob("*.pt"))  # use_cache=False writes nothing
    assert torch.equal(fresh["author"].x.to_dense(), cached["author"].x.to_dense())
    assert torch.equal(fresh["author"].y, cached["author"].y)


class _Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_forged_archive_is_refused_before_unpickling(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    (tmp_path / "data" / "gtn").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "data" / "gtn" / "gtn-acm.zip", "w") as z:
        for member in ("edges.pkl", "node_features.pkl", "labels.pkl"):
            z.writestr(member, pickle.dumps(_Payload(str(marker))))
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ChecksumError, match="refusing to unpickle"):
        load_gtn("ACM")
    assert not marker.exists()
    # The restricted unpickler refuses such a payload too.
    with pytest.raises(pickle.UnpicklingError, match="never holds"):
        _ArrayUnpickler(io.BytesIO(pickle.dumps(_Payload(str(marker))))).load()
    assert not marker.exists()


def test_missing_archive_and_bad_names(tmp_path, monkeypatch):
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingDataError, match="gtn/gtn-imdb.zip"):
        load_gtn("imdb")
    with pytest.raises(ValueError, match="unknown GTN data set"):
        load_gtn("Cora")
    with pytest.raises(TypeError):
        load_gtn(3)
    assert set(GTN_DATASETS) == {"ACM", "DBLP", "IMDB"}
