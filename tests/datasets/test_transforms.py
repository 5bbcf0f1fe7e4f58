"""Feature weighting and the inductive view of a heterogeneous graph, on
hand-computed values."""
import pytest
import torch
from torch_geometric.data import HeteroData

from gnnagg.datasets.transforms import inductive_edges, preprocess_features


def tiny_graph():
    g = torch.Generator().manual_seed(0)
    data = HeteroData()
    pa = torch.stack([torch.arange(12), torch.randint(0, 8, (12,), generator=g)])
    ps = torch.stack([torch.arange(12), torch.arange(12) % 3])
    data["paper", "PA", "author"].edge_index = pa
    data["author", "AP", "paper"].edge_index = pa.flip(0)
    data["paper", "PS", "subject"].edge_index = ps
    data["subject", "SP", "paper"].edge_index = ps.flip(0)
    split = torch.arange(12) % 4
    data["paper"].val_mask = split == 2
    data["paper"].test_mask = split == 3
    return data


def test_inductive_edges_hide_the_nodes():
    data = tiny_graph()
    hidden = data["paper"].val_mask | data["paper"].test_mask
    edges = inductive_edges(data, "paper", hidden)
    for (src, _, dst), ei in edges.items():
        if src == "paper":
            assert not hidden[ei[0]].any()
        if dst == "paper":
            assert not hidden[ei[1]].any()
    assert edges["paper", "PA", "author"].size(1) == int((~hidden).sum())
    assert edges["paper", "PS", "subject"].tolist() == [[0, 1, 4, 5, 8, 9], [0, 1, 1, 2, 2, 0]]


def test_feature_preprocessing_values():
    x = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    row = preprocess_features(x.to_sparse(), "row")
    assert row.is_sparse
    assert torch.allclose(row.to_dense(), torch.tensor([[0.5, 0.5, 0], [0, 1.0, 0], [0, 0, 0]]))
    tfidf = preprocess_features(x, "tfidf")  # dense in, dense out
    idf = torch.log(torch.tensor([4 / 2, 4 / 3])) + 1  # smooth idf: log((1 + n) / (1 + df)) + 1
    first = idf / idf.norm()
    assert torch.allclose(tfidf[0, :2], first)
    assert torch.allclose(tfidf[1], torch.tensor([0, 1.0, 0]))
    assert preprocess_features(x, "raw") is x
    with pytest.raises(ValueError, match="unknown feature transform 'l2'"):
        preprocess_features(x, "l2")
