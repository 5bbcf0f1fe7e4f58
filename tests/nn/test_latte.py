"""LATTEConv and LATTE on a small hand-made heterogeneous graph."""
import pytest
import torch

from gnnagg.models.latte import LATTE, chain_relations, compose_adjacency, compose_relations
from gnnagg.nn.latte import LATTEConv, typed_linear

# 3 papers, 2 authors, 2 subjects; paper -> author and author -> paper etc.
NUM = {"paper": 3, "author": 2, "subject": 2}
PA = torch.tensor([[0, 0, 1, 2], [0, 1, 1, 0]])
PS = torch.tensor([[0, 1, 2], [0, 0, 1]])
EDGES = {("paper", "PA", "author"): PA, ("author", "AP", "paper"): PA.flip(0),
         ("paper", "PS", "subject"): PS, ("subject", "SP", "paper"): PS.flip(0)}
METADATA = (list(NUM), list(EDGES))


def features(seed=0, sparse_author=True):
    g = torch.Generator().manual_seed(seed)
    x = {"paper": torch.randn(3, 4, generator=g), "author": torch.randn(2, 5, generator=g),
         "subject": torch.randn(2, 3, generator=g)}
    if sparse_author:
        x["author"] = (x["author"] * (x["author"] > 0)).to_sparse()
    return x


def dense(edge_index, shape):
    a = torch.zeros(shape, dtype=torch.float64)
    a[edge_index[0], edge_index[1]] = 1.0
    return a


def test_chain_relations_names_and_types():
    levels = chain_relations(list(EDGES), 2)
    assert levels[0] == list(EDGES)
    assert set(levels[1]) == {("paper", "PA.AP", "paper"), ("paper", "PS.SP", "paper"),
                              ("author", "AP.PA", "author"), ("author", "AP.PS", "subject"),
                              ("subject", "SP.PA", "author"), ("subject", "SP.PS", "subject")}
    with pytest.raises(ValueError, match="order"):
        chain_relations(list(EDGES), 0)


def test_composed_relations_match_dense_computation():
    levels = compose_relations(EDGES, NUM, 3)
    for rel, (edge_index, weight) in levels[1].items():
        a_name, b_name = rel[1].split(".")
        mid = next(r for r in EDGES if r[1] == a_name)[2]
        a = dense(EDGES[(rel[0], a_name, mid)], (NUM[rel[0]], NUM[mid]))
        b = dense(EDGES[(mid, b_name, rel[2])], (NUM[mid], NUM[rel[2]]))
        deg = a.sum(0) + b.sum(1)  # column degree of A_a + row degree of A_b
        expected = a @ torch.diag(1.0 / deg.clamp(min=1)) @ b
        got = torch.zeros_like(expected)
        got[edge_index[0], edge_index[1]] = weight.double()
        assert torch.allclose(got, expected, atol=1e-6), rel
    # Order 3 chains an order-2 relation with a first-order one.
    assert ("paper", "PA.AP.PA", "author") in levels[2]


def test_compose_adjacency_hand_values():
    # a: 1 x 2 (both middle nodes), b: 2 x 1; middle degrees 1+1 and 1+1.
    a = torch.sparse_coo_tensor(torch.tensor([[0, 0], [0, 1]]), torch.ones(2), (1, 2))
    b = torch.sparse_coo_tensor(torch.tensor([[0, 1], [0, 0]]), torch.ones(2), (2, 1))
    out = compose_adjacency(a, b).to_dense()
    assert torch.allclose(out, torch.tensor([[1.0]]))  # 1/2 + 1/2
    with pytest.raises(ValueError, match="chain"):
        compose_adjacency(a, a)


def test_attention_sums_to_one_per_node_and_relation():
    conv = LATTEConv({"paper": 4, "author": 5, "subject": 3}, 8, METADATA)
    conv.eval()
    out, (alphas, betas) = conv(features(), EDGES, return_attention_weights=True)
    assert set(out) == set(NUM)
    for rel, (edge_index, alpha) in alphas.items():
        sums = torch.zeros(NUM[rel[2]]).index_add_(0, edge_index[1], alpha)
        has_edges = torch.zeros(NUM[rel[2]], dtype=torch.bool)
        has_edges[edge_index[1]] = True
        assert torch.allclose(sums[has_edges], torch.ones(int(has_edges.sum())), atol=1e-6), rel
    for t, beta in betas.items():
        assert beta.shape == (NUM[t], len(conv.relations_into[t]) + 1)
        assert torch.allclose(beta.sum(-1), torch.ones(NUM[t]), atol=1e-6)


def test_output_is_attention_weighted_sum():
    torch.manual_seed(0)
    conv = LATTEConv({"paper": 4, "author": 5, "subject": 3}, 6, METADATA, attn_dropout=0.0)
    x = features(sparse_author=False)
    out, (alphas, betas) = conv(x, EDGES, return_attention_weights=True)
    # Recompute paper's output by hand from the returned coefficients.
    terms = []
    for rel in conv.relations_into["paper"]:
        edge_index, alpha = alphas[rel]
        msgs = alpha[:, None] * conv.lin_r[rel[0]](x[rel[0]])[edge_index[0]]
        terms.append(torch.zeros(3, 6).index_add_(0, edge_index[1], msgs))
    terms.append(conv.lin_l["paper"](x["paper"]))
    expected = torch.relu((betas["paper"][:, :, None] * torch.stack(terms, 1)).sum(1))
    assert torch.allclose(out["paper"], expected, atol=1e-5)


def test_sparse_and_dense_inputs_agree():
    lin = torch.nn.Linear(5, 3)
    x = features(sparse_author=True)["author"]
    assert torch.allclose(typed_linear(lin, x), lin(x.to_dense()), atol=1e-6)


@pytest.mark.parametrize("aggr", ["mean", "max", "lstm", "lcm"])
def test_other_aggregators_drop_in(aggr):
    conv = LATTEConv({"paper": 4, "author": 5, "subject": 3}, 8, METADATA, aggr=aggr)
    out = conv(features(), EDGES)
    assert out["paper"].shape == (3, 8)
    out["paper"].sum().backward()


def test_latte_model_forward_proximity_and_cache():
    torch.manual_seed(0)
    model = LATTE({"paper": 4, "author": 5, "subject": 3}, 3, METADATA, "paper",
                  hidden_channels=8, num_layers=2)
    logits, prox = model(features(), EDGES, return_proximity_loss=True)
    assert logits.shape == (3, 3) and prox.item() > 0
    (logits.sum() + prox).backward()
    assert len(model._cache) == 1
    model(features(), EDGES)
    assert len(model._cache) == 1  # same graph: products are not recomputed
    # Layer 2 of a 2-layer model reads only relations into the target.
    assert all(r[2] == "paper" for r in model.layer_rels[1])
    assert "LATTE(" in repr(model) and "LATTEConv(" in repr(model.convs[0])


def test_pruning_keeps_target_embedding():
    # Output types that never reach the target do not change its embedding.
    torch.manual_seed(0)
    conv = LATTEConv({"paper": 4, "author": 5, "subject": 3}, 8, METADATA, attn_dropout=0.0)
    pruned = LATTEConv({"paper": 4, "author": 5, "subject": 3}, 8,
                       (METADATA[0], [r for r in METADATA[1] if r[2] == "paper"]),
                       attn_dropout=0.0, output_node_types=["paper"])
    state = {k: v for k, v in conv.state_dict().items() if k in pruned.state_dict()}
    pruned.load_state_dict(state)
    assert torch.allclose(conv(features(), EDGES)["paper"], pruned(features(), EDGES)["paper"])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="relation"):
        LATTEConv(4, 8, (["a"], [("a", "r", "b")]))
    conv = LATTEConv({"paper": 4, "author": 5, "subject": 3}, 8, METADATA)
    x = features()
    x["paper"] = torch.randn(3, 7)
    with pytest.raises(ValueError, match="shape"):
        conv(x, EDGES)
    with pytest.raises(ValueError, match="edge_index"):
        conv(features(), {k: v for k, v in EDGES.items() if k[1] != "PA"})
    with pytest.raises(ValueError, match="target node type"):
        LATTE({"paper": 4, "author": 5, "subject": 3}, 3, METADATA, "venue")
