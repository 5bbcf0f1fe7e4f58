"""LATTE's relation composition and model on a small hand-made graph."""
import pytest
import torch

from gnnagg.models.latte import LATTE
from gnnagg.nn.relations import (chain_relations, compose_adjacency, compose_relations,
                                 relation_parts)

pytestmark = pytest.mark.usefixtures("one_thread")

# 3 papers, 2 authors, 2 subjects, both directions of every relation.
NUM = {"paper": 3, "author": 2, "subject": 2}
IN = {"paper": 4, "author": 5, "subject": 3}
PA = torch.tensor([[0, 0, 1, 2], [0, 1, 1, 0]])
PS = torch.tensor([[0, 1, 2], [0, 0, 1]])
EDGES = {("paper", "PA", "author"): PA, ("author", "AP", "paper"): PA.flip(0),
         ("paper", "PS", "subject"): PS, ("subject", "SP", "paper"): PS.flip(0)}
METADATA = (list(NUM), list(EDGES))
PAP = ("paper", "PA.AP", "paper")


def features(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {t: torch.randn(NUM[t], IN[t], generator=g) for t in NUM}
    x["author"] = (x["author"] * (x["author"] > 0)).to_sparse()
    return x


def dense(edge_index, shape, values=None):
    a = torch.zeros(shape, dtype=torch.float64)
    a[edge_index[0], edge_index[1]] = 1.0 if values is None else values.double()
    return a


def damped(a, b):
    deg = a.sum(0) + b.sum(1)  # weighted column degree of A_a + row degree of A_b
    return a @ torch.diag(torch.where(deg > 0, 1.0 / deg, torch.zeros_like(deg))) @ b


def test_chain_relations_names_types_and_parts():
    levels = chain_relations(list(EDGES), 2)
    assert levels[0] == list(EDGES)
    assert set(levels[1]) == {PAP, ("paper", "PS.SP", "paper"),
                              ("author", "AP.PA", "author"), ("author", "AP.PS", "subject"),
                              ("subject", "SP.PA", "author"), ("subject", "SP.PS", "subject")}
    parts = relation_parts(chain_relations(list(EDGES), 3))
    # The first-order part is on the sending side, the higher-order one on
    # the receiving side (as the authors compose them).
    assert parts[PAP] == (("paper", "PA", "author"), ("author", "AP", "paper"))
    assert parts[("paper", "PA.AP.PA", "author")] == (("paper", "PA", "author"),
                                                      ("author", "AP.PA", "author"))
    with pytest.raises(ValueError, match="order"):
        chain_relations(list(EDGES), 0)


def test_composed_relations_match_dense_computation():
    levels = compose_relations(EDGES, NUM, 3)
    mats = {r: dense(ei, (NUM[r[0]], NUM[r[2]])) for r, ei in EDGES.items()}
    parts = relation_parts(chain_relations(list(EDGES), 3))
    for t in (1, 2):
        for rel, (edge_index, weight) in levels[t].items():
            b, a = parts[rel]
            mats[rel] = damped(mats[b], mats[a])
            got = dense(edge_index, mats[rel].shape, weight)
            assert torch.allclose(got, mats[rel], atol=1e-6), rel
    assert ("paper", "PA.AP.PA", "author") in levels[2]
    only = compose_relations(EDGES, NUM, 2, wanted=[PAP])
    assert list(only[1]) == [PAP]


def test_compose_adjacency_hand_values():
    # a: 1 x 2, b: 2 x 1 with weights; middle degrees 1 + 0.5 and 1 + 2.
    a = torch.sparse_coo_tensor(torch.tensor([[0, 0], [0, 1]]), torch.ones(2), (1, 2))
    b = torch.sparse_coo_tensor(torch.tensor([[0, 1], [0, 0]]), torch.tensor([0.5, 2.0]), (2, 1))
    out = compose_adjacency(a, b).to_dense()
    assert torch.allclose(out, torch.tensor([[0.5 / 1.5 + 2.0 / 3.0]]))
    with pytest.raises(ValueError, match="chain"):
        compose_adjacency(a, a)


def model(**kwargs):
    torch.manual_seed(0)
    options = dict(hidden_channels=8, num_layers=2, attn_dropout=0.0, layer_dropout=0.0,
                   dropout=0.0)
    options.update(kwargs)
    return LATTE(IN, 3, METADATA, "paper", **options)


def test_composed_weights_reach_the_messages():
    m = model(edge_weight="attention")
    m.eval()
    before = m(features(), EDGES)
    edges = next(iter(m._cache.values()))[1]
    ei, w = edges[PAP]
    assert w is not None and torch.allclose(
        dense(ei, (3, 3), w), damped(dense(PA, (3, 2)), dense(PA.flip(0), (2, 3))), atol=1e-6)
    edges[PAP] = (ei, w * torch.linspace(0.1, 3.0, w.numel()))  # not a factor per node
    changed = m(features(), EDGES)
    assert not torch.allclose(before, changed)
    m_none = model(edge_weight="none")
    m_none.eval()
    ignored = m_none(features(), EDGES)
    edges = next(iter(m_none._cache.values()))[1]
    edges[PAP] = (edges[PAP][0], edges[PAP][1] * 5)
    assert torch.allclose(ignored, m_none(features(), EDGES))


def test_return_attention_is_a_softmax_over_relations():
    m = model(num_layers=2, cumulative=True)
    logits, prox, attention = m(features(), EDGES, return_proximity_loss=True,
                                return_attention=True)
    assert logits.shape == (3, 3) and prox.item() > 0
    assert len(attention) == 2
    for t, layer in enumerate(attention):
        for node_type, (relations, beta) in layer.items():
            assert relations[-1] == (node_type, "self", node_type)
            assert all(r[2] == node_type for r in relations)
            assert beta.shape == (NUM[node_type], len(relations))
            assert torch.allclose(beta.sum(-1), torch.ones(NUM[node_type]))
    # layer 2 of a cumulative model: orders 1 and 2 into the target
    assert [r[1] for r in attention[1]["paper"][0]] == ["AP", "SP", "PA.AP", "PS.SP", "self"]
    m.train()
    means = m.relation_attention(features(), EDGES)
    assert m.training  # the mode it found is restored
    m.eval()
    _, attention = m(features(), EDGES, return_attention=True)
    assert means["layer 2"]["PA.AP"] == pytest.approx(float(attention[1]["paper"][1][:, 2].mean()))
    assert sum(means["layer 1"].values()) == pytest.approx(1.0)


def test_edge_threshold_composes_from_the_previous_attention():
    m = model(edge_threshold=1.0, heads=1)
    m.eval()
    seen = {}
    layer2 = m.convs[1].forward

    def spy(x, edge_index_dict, edge_weight_dict=None, **kwargs):
        seen.update(edges=edge_index_dict, weights=edge_weight_dict)
        return layer2(x, edge_index_dict, edge_weight_dict, **kwargs)

    m.convs[1].forward = spy
    m(features(), EDGES)
    # Papers 1 and 2 have one author each (attention 1), paper 0 two (< 1):
    # only author1 -> paper1 and author0 -> paper2 survive the threshold, so
    # PA.AP is paper0 -> {1, 2}, paper1 -> 1, paper2 -> 2, each through an
    # author of degree 2 (papers) + 1 (attention): weight 1/3.
    ei = seen["edges"][PAP]
    assert sorted(map(tuple, ei.t().tolist())) == [(0, 1), (0, 2), (1, 1), (2, 2)]
    assert torch.allclose(seen["weights"][PAP], torch.full((4,), 1 / 3))
    assert len(m._cache) == 1 and PAP not in next(iter(m._cache.values()))[1]


@pytest.mark.parametrize("pooling,width", [("concat", 16), ("last", 8), ("mean", 8), ("max", 8)])
def test_layer_pooling_and_projection(pooling, width):
    m = model(layer_pooling=pooling, input_projection=False)
    assert m.classifier.in_features == width
    assert m.convs[0].in_channels["paper"] == 4 and not len(m.projection)
    out = m(features(), EDGES)
    assert out.shape == (3, 3)
    projected = model(layer_pooling=pooling)
    assert projected.convs[0].in_channels["paper"] == 8
    assert set(projected.projection) == {"paper", "author", "subject"}


def test_cache_and_pruning():
    m = model()
    m(features(), EDGES)
    m(features(), EDGES)
    assert len(m._cache) == 1  # same graph: products are not recomputed
    # Layer 2 of a 2-layer model reads only relations into the target.
    assert all(r[2] == "paper" for r in m.layer_rels[1])
    assert "LATTE(" in repr(m) and "LATTEConv(" in repr(m.convs[0])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="target node type"):
        LATTE(IN, 3, METADATA, "venue")
    with pytest.raises(ValueError, match="layer_pooling"):
        model(layer_pooling="sum")
    with pytest.raises(ValueError, match="edge_threshold"):
        model(edge_threshold=1.5)
    with pytest.raises(ValueError, match="edge_weight"):
        model(edge_weight="scale")
    with pytest.raises(ValueError, match="init"):
        model(init="he")
    with pytest.raises(ValueError, match="lacks the relations"):
        model()(features(), {k: v for k, v in EDGES.items() if k[1] != "PA"})
