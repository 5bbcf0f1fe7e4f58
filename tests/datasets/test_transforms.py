"""Feature weighting and the inductive view of a heterogeneous graph, on
hand-computed values."""
import pytest
import torch
from torch_geometric.data import HeteroData

from gnnagg.datasets.transforms import inductive_edges, preprocess_features


def test_inductive_edges_hide_the_nodes():
    data = HeteroData()
    data["paper", "PA", "author"].edge_index = torch.tensor([[0, 1, 2, 3], [0, 1, 1, 0]])
    data["author", "AP", "paper"].edge_index = torch.tensor([[0, 1, 1, 0], [0, 1, 2, 3]])
    data["paper", "cites", "paper"].edge_index = torch.tensor([[0, 1, 2], [1, 2, 3]])
    hidden = torch.tensor([False, False, True, True])
    edges = inductive_edges(data, "paper", hidden)
    for (src, _, dst), ei in edges.items():
        if src == "paper":
            assert not hidden[ei[0]].any()
        if dst == "paper":
            assert not hidden[ei[1]].any()
    assert edges["paper", "PA", "author"].size(1) == int((~hidden).sum())
    assert edges["paper", "PA", "author"].tolist() == [[0, 1], [0, 1]]
    assert edges["author", "AP", "paper"].tolist() == [[0, 1], [0, 1]]
    assert edges["paper", "cites", "paper"].tolist() == [[0], [1]]


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
