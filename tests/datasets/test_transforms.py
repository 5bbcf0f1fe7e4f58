"""Feature weighting, the inductive view of a heterogeneous graph and
neighbour sampling, on hand-computed values."""
import pytest
import torch
from torch_geometric.data import HeteroData

from gnnagg.datasets.transforms import inductive_edges, preprocess_features, sample_neighbors


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


# Neighbour sampling: papers 0-5, authors 0-2, one subject; messages flow
# edge_index[0] -> edge_index[1].
PA = torch.tensor([[0, 1, 2, 3, 4, 5, 0], [0, 0, 1, 1, 2, 2, 1]])
PS = torch.tensor([[0, 1, 2, 3, 4, 5], [0, 0, 0, 0, 0, 0]])
GRAPH = {("paper", "PA", "author"): PA, ("author", "AP", "paper"): PA.flip(0),
         ("paper", "PS", "subject"): PS, ("subject", "SP", "paper"): PS.flip(0)}
SIZES = {"paper": 6, "author": 3, "subject": 1}


def edges_into(edges, node_type):
    """``{node: number of its incoming edges}`` over all relations."""
    count = {}
    for (_, _, dst), ei in edges.items():
        if dst == node_type:
            for v in ei[1].tolist():
                count[v] = count.get(v, 0) + 1
    return count


def test_sampling_everything_gives_the_two_hop_in_neighbourhood():
    out = sample_neighbors(GRAPH, SIZES, {"paper": torch.tensor([0])}, [-1, -1])
    # hop 1: paper 0 <- authors 0, 1 and the subject; hop 2: every edge into those
    assert out["author", "AP", "paper"].tolist() == [[0, 1], [0, 0]]
    assert out["subject", "SP", "paper"].tolist() == [[0], [0]]
    assert out["paper", "PA", "author"].tolist() == [[0, 1, 2, 3, 0], [0, 0, 1, 1, 1]]
    assert out["paper", "PS", "subject"].tolist() == PS.tolist()
    # fan-outs above every degree draw the same edges
    big = sample_neighbors(GRAPH, SIZES, {"paper": torch.tensor([0])}, [10, 10])
    assert all(torch.equal(big[r], out[r]) for r in GRAPH)


def test_fanout_is_over_all_relations_and_per_hop():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        one = sample_neighbors(GRAPH, SIZES, {"paper": torch.tensor([0, 2])}, [2], generator=g)
        # paper 0 has 3 incoming edges (2 from authors, 1 from the subject), paper 2 has 2
        assert edges_into(one, "paper") == {0: 2, 2: 2}
        assert edges_into(one, "author") == {} and edges_into(one, "subject") == {}
        two = sample_neighbors(GRAPH, SIZES, {"paper": torch.tensor([0])}, [1, 2], generator=g)
        into = {t: edges_into(two, t) for t in SIZES}
        (first,) = [(t, s) for t in ("author", "subject") for s in into[t]]  # the hop-1 node
        assert into[first[0]] == {first[1]: 2}  # it drew 2 at hop 2, no one else drew
        # the seed drew 1, then 2 of its 3 again: 2 or 3 distinct
        assert 2 <= into["paper"][0] <= 3 and list(into["paper"]) == [0]
        for r, ei in two.items():  # a subset of the graph's edges, in their order
            pos = [GRAPH[r].t().tolist().index(e) for e in ei.t().tolist()]
            assert pos == sorted(pos)


def test_sampling_is_uniform_and_reproducible():
    g = torch.Generator().manual_seed(1)
    counts = {}
    for _ in range(3000):
        out = sample_neighbors(GRAPH, SIZES, {"paper": torch.tensor([0])}, [1], generator=g)
        (rel,) = [r for r, ei in out.items() if ei.size(1)]
        key = (rel[1], int(out[rel][0, 0]))
        counts[key] = counts.get(key, 0) + 1
    assert sorted(counts) == [("AP", 0), ("AP", 1), ("SP", 0)]
    assert all(abs(c / 3000 - 1 / 3) < 0.03 for c in counts.values())
    a, b = (sample_neighbors(GRAPH, SIZES, {"paper": torch.arange(6)}, [1, 1],
                             generator=torch.Generator().manual_seed(7)) for _ in range(2))
    assert all(torch.equal(a[r], b[r]) for r in GRAPH)


@pytest.mark.parametrize("seeds, fanouts, message", [
    ({"paper": torch.tensor([6])}, [2], r"seeds of 'paper' must lie in \[0, 6\); got \[6, 6\]"),
    ({"venue": torch.tensor([0])}, [2], "seed node type 'venue'"),
    ({"paper": torch.ones(6, dtype=torch.bool)}, [2], "not a mask"),
    ({"paper": torch.tensor([0])}, [], "num_neighbors is empty"),
    ({"paper": torch.tensor([0])}, [0], "positive integers or -1"),
])
def test_sampling_rejects_bad_input(seeds, fanouts, message):
    with pytest.raises(ValueError, match=message):
        sample_neighbors(GRAPH, SIZES, seeds, fanouts)
    with pytest.raises(ValueError, match="node type 'author', which is not in num_nodes_dict"):
        sample_neighbors(GRAPH, {"paper": 6, "subject": 1}, {"paper": torch.tensor([0])}, [1])
