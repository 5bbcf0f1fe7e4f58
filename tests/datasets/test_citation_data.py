import os
import shutil
import urllib.error
from pathlib import Path

import pytest
import torch

from gnnagg.datasets import ChecksumError, CorruptDataError, MissingDataError, integrity
from gnnagg.datasets.citation import (dataset_key, largest_connected_component, load_citation,
                                      random_split, row_normalize)

needs_data = pytest.mark.data("planetoid")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One fresh cache for the module, so PyG processes each set once."""
    path = tmp_path_factory.mktemp("gnnagg-cache")
    old = os.environ.get("GNNAGG_CACHE")
    os.environ["GNNAGG_CACHE"] = str(path)
    yield path
    if old is None:
        del os.environ["GNNAGG_CACHE"]
    else:
        os.environ["GNNAGG_CACHE"] = old


@needs_data
def test_cora_public_split_from_offline_folder(cache):
    data = load_citation("cora")
    assert (data.num_nodes, data.edge_index.size(1), data.num_features) == (2708, 10556, 1433)
    assert [int(m.sum()) for m in (data.train_mask, data.val_mask, data.test_mask)] == \
        [140, 500, 1000]
    # Row-normalised features; raw files were staged into the cache.
    sums = data.x.sum(dim=1)
    torch.testing.assert_close(sums[sums > 0], torch.ones(int((sums > 0).sum())))
    assert (cache / "planetoid" / "Cora" / "raw" / "ind.cora.graph").is_file()


@pytest.mark.data("gnn-benchmark")
def test_gnn_benchmark_set_from_offline_folder(cache):
    # Coauthor CS takes the same path (gnn-benchmark/<Name>/raw/<file>.npz)
    # but densifies 18333 x 6805 features: too slow for the unit tests.
    data = load_citation("amazon-computers", normalize_features=False)
    assert (data.num_nodes, data.edge_index.size(1), data.num_features,
            int(data.y.max()) + 1) == (13752, 491722, 767, 10)
    assert (cache / "gnn-benchmark" / "Computers" / "raw" /
            "amazon_electronics_computers.npz").is_file()


def _private_cora(tmp_path, monkeypatch):
    """A writable data folder holding a copy of Cora's raw files, with no
    SHA256SUMS; returns its raw folder."""
    src = Path(os.environ["GNNAGG_DATA"].split(os.pathsep)[0]) / "planetoid" / "Cora" / "raw"
    raw = tmp_path / "data" / "planetoid" / "Cora" / "raw"
    shutil.copytree(src, raw)
    for path in raw.iterdir():
        os.chmod(path, 0o644)
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    return raw


def _rewrite(path, data: bytes):
    mtime = path.stat().st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(mtime + 10**9,) * 2)


def _same_size_808_lines(good: bytes) -> bytes:
    """The first 808 test ids, zero-padded to the file's 5000 bytes."""
    ids = good.split()[:808]
    extra = len(good) - sum(len(i) + 1 for i in ids)
    lines = [b"0" * (extra // 808 + (k < extra % 808)) + i for k, i in enumerate(ids)]
    return b"\n".join(lines) + b"\n"


@needs_data
def test_edited_raw_file_is_never_served_from_the_cache(tmp_path, monkeypatch):
    raw = _private_cora(tmp_path, monkeypatch)
    index = raw / "ind.cora.test.index"
    good = index.read_bytes()
    edited = _same_size_808_lines(good)
    assert len(edited) == len(good) == 5000 and len(edited.split()) == 808
    assert int(load_citation("cora").test_mask.sum()) == 1000
    # Cora's original hashes are known: the edit is refused, nothing cached.
    _rewrite(index, edited)
    with pytest.raises(ChecksumError, match="ind.cora.test.index is damaged"):
        load_citation("cora")
    # With no known hash the edit loads (nothing could tell), but restoring
    # the good file restores the data: the processed cache is rebuilt.
    monkeypatch.setattr(integrity, "KNOWN_SHA256", {})
    assert int(load_citation("cora").test_mask.sum()) == 808
    _rewrite(index, good)
    assert int(load_citation("cora").test_mask.sum()) == 1000


@needs_data
def test_damaged_files_are_named(tmp_path, monkeypatch):
    raw = _private_cora(tmp_path, monkeypatch)
    monkeypatch.setattr(integrity, "KNOWN_SHA256", {})
    good = (raw / "ind.cora.x").read_bytes()
    _rewrite(raw / "ind.cora.x", good[:1000])  # truncated
    cache = tmp_path / "cache" / "planetoid" / "Cora"
    with pytest.raises(CorruptDataError) as err:
        load_citation("cora")
    message = str(err.value)
    assert f"could not read {(cache / 'raw' / 'ind.cora.x').resolve()}" in message
    assert "(UnpicklingError: pickle data was truncated)" in message
    assert f"copied from {raw / 'ind.cora.x'}" in message and f"then delete {cache}." in message
    _rewrite(raw / "ind.cora.x", good)
    assert int(load_citation("cora").test_mask.sum()) == 1000
    # A truncated processed file is rebuilt from the raw files, with a warning.
    processed = cache / "processed" / "data.pt"
    processed.write_bytes(processed.read_bytes()[:100])
    with pytest.warns(UserWarning, match="rebuilding them from the raw files"):
        data = load_citation("cora")
    assert data.num_nodes == 2708 and int(data.test_mask.sum()) == 1000


def _offline(monkeypatch, tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    monkeypatch.setenv("GNNAGG_DATA", str(empty))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    return empty


def _no_network(*args, **kwargs):
    raise urllib.error.URLError("no network (test)")


def test_pubmed_missing_names_files_and_places(monkeypatch, tmp_path):
    from torch_geometric.datasets import Planetoid

    empty = _offline(monkeypatch, tmp_path)
    monkeypatch.setattr(Planetoid, "download", _no_network)
    with pytest.raises(MissingDataError) as info:
        load_citation("PubMed")
    message = str(info.value)
    assert "planetoid/PubMed/raw/ind.pubmed.x" in message
    assert str(empty / "planetoid/PubMed/raw/ind.pubmed.graph") in message
    assert "URLError" in message


def test_ogbn_arxiv_missing_names_files_and_places(monkeypatch, tmp_path):
    import ogb.nodeproppred.dataset_pyg as ogb_pyg

    empty = _offline(monkeypatch, tmp_path)
    monkeypatch.setattr(ogb_pyg, "decide_download", lambda url: True)
    monkeypatch.setattr(ogb_pyg, "download_url", _no_network)
    with pytest.raises(MissingDataError) as info:
        load_citation("ogbn-arxiv")
    message = str(info.value)
    assert "ogb/ogbn_arxiv/raw/edge.csv.gz" in message
    assert str(empty / "ogb/ogbn_arxiv/RELEASE_v1.txt") in message


def test_dataset_names():
    assert dataset_key("CiteSeer") == "citeseer"
    assert dataset_key("amazon-computers") == "computers"
    with pytest.raises(ValueError, match="unknown dataset 'Reddit'"):
        dataset_key("Reddit")
    with pytest.raises(TypeError):
        dataset_key(3)


def test_row_normalize_keeps_empty_rows():
    x = torch.tensor([[1.0, 3.0], [0.0, 0.0]])
    torch.testing.assert_close(row_normalize(x), torch.tensor([[0.25, 0.75], [0.0, 0.0]]))


Y = torch.tensor([0] * 7 + [1] * 6 + [2] * 8)


def test_random_split_is_stratified_and_disjoint():
    gen = torch.Generator().manual_seed(0)
    train, val, test = random_split(Y, 3, 2, 3, generator=gen)
    for c in range(3):
        assert int(train[Y == c].sum()) == 2 and int(val[Y == c].sum()) == 3
    assert not (train & val).any() and not (train & test).any() and not (val & test).any()
    assert int((train | val | test).sum()) == Y.numel()
    again = random_split(Y, 3, 2, 3, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again))


def test_random_split_inside_candidates_and_authors_quirk():
    nodes = torch.arange(5, 21)  # the "component": nodes 5..20
    train, val, test = random_split(Y, 3, 1, 1, nodes=nodes,
                                    generator=torch.Generator().manual_seed(1))
    chosen = (train | val | test).nonzero().view(-1)
    assert chosen.min() >= 5 and int((train | val | test).sum()) == 16
    # The authors' code uses positions 0..15 as ids: labels no longer match.
    train_q, _, test_q = random_split(Y, 3, 1, 1, nodes=nodes, authors_positions=True,
                                      generator=torch.Generator().manual_seed(1))
    assert (train_q | test_q).nonzero().max() < 16
    with pytest.raises(ValueError, match="class 1"):
        random_split(Y, 3, 4, 3)


def test_largest_connected_component():
    edge_index = torch.tensor([[0, 1, 3, 4, 5], [1, 2, 4, 5, 6]])
    assert largest_connected_component(edge_index, 8).tolist() == [3, 4, 5, 6]
