"""LATTEConv on a small hand-made heterogeneous graph."""
import pytest
import torch
import torch.nn.functional as F

from gnnagg.nn.latte import LATTEConv, typed_linear

pytestmark = pytest.mark.usefixtures("one_thread")

# 3 papers, 2 authors, 2 subjects; paper -> author and author -> paper etc.
NUM = {"paper": 3, "author": 2, "subject": 2}
IN = {"paper": 4, "author": 5, "subject": 3}
PA = torch.tensor([[0, 0, 1, 2], [0, 1, 1, 0]])
PS = torch.tensor([[0, 1, 2], [0, 0, 1]])
EDGES = {("paper", "PA", "author"): PA, ("author", "AP", "paper"): PA.flip(0),
         ("paper", "PS", "subject"): PS, ("subject", "SP", "paper"): PS.flip(0)}
METADATA = (list(NUM), list(EDGES))
AP = ("author", "AP", "paper")


def features(seed=0, sparse_author=True):
    g = torch.Generator().manual_seed(seed)
    x = {"paper": torch.randn(3, 4, generator=g), "author": torch.randn(2, 5, generator=g),
         "subject": torch.randn(2, 3, generator=g)}
    if sparse_author:
        x["author"] = (x["author"] * (x["author"] > 0)).to_sparse()
    return x


def by_hand(conv, x, alphas, betas, node_type, num):
    """The layer's output recomputed from its returned coefficients."""
    c = conv.out_channels // conv.heads
    terms = []
    for rel in conv.relations_into[node_type]:
        edge_index, alpha = alphas[rel]
        right = conv.lin_r[rel[0]](x[rel[0]].to_dense())[edge_index[0]].view(-1, conv.heads, c)
        msgs = (alpha[:, :, None] * right).flatten(1)
        terms.append(torch.zeros(num, conv.out_channels).index_add_(0, edge_index[1], msgs))
    terms.append(conv.lin_l[node_type](x[node_type].to_dense()))
    beta = betas[node_type]
    return torch.relu((beta[:, :, None] * torch.stack(terms, 1)).sum(1))


@pytest.mark.parametrize("heads", [1, 2])
def test_attention_sums_to_one_per_node_relation_and_head(heads):
    conv = LATTEConv(IN, 8, METADATA, heads=heads)
    conv.eval()
    out, (alphas, betas) = conv(features(), EDGES, return_attention_weights=True)
    assert set(out) == set(NUM)
    for rel, (edge_index, alpha) in alphas.items():
        assert alpha.shape == (edge_index.size(1), heads)
        sums = torch.zeros(NUM[rel[2]], heads).index_add_(0, edge_index[1], alpha)
        has_edges = torch.zeros(NUM[rel[2]], dtype=torch.bool)
        has_edges[edge_index[1]] = True
        assert torch.allclose(sums[has_edges], torch.ones(int(has_edges.sum()), heads)), rel
    for t, beta in betas.items():
        assert beta.shape == (NUM[t], len(conv.relations_into[t]) + 1)
        assert torch.allclose(beta.sum(-1), torch.ones(NUM[t]))


@pytest.mark.parametrize("heads", [1, 2])
def test_output_is_attention_weighted_sum(heads):
    torch.manual_seed(0)
    conv = LATTEConv(IN, 6, METADATA, heads=heads, attn_dropout=0.0)
    x = features(sparse_author=False)
    out, (alphas, betas) = conv(x, EDGES, return_attention_weights=True)
    for t in NUM:
        assert torch.allclose(out[t], by_hand(conv, x, alphas, betas, t, NUM[t]), atol=1e-5)


def test_attention_logits_by_hand():
    torch.manual_seed(0)
    conv = LATTEConv(IN, 4, METADATA, heads=2, attn_dropout=0.0)
    with torch.no_grad():
        conv.sharpening[conv.key(AP)].fill_(1.5)
    x = features(sparse_author=False)
    left = conv.lin_l["paper"](x["paper"]).view(3, 2, 2)
    right = conv.lin_r["author"](x["author"]).view(2, 2, 2)
    ei = EDGES[AP]
    k = conv.key(AP)
    raw = (left[ei[1]] * conv.att_l[k]).sum(-1) + (right[ei[0]] * conv.att_r[k]).sum(-1)
    expected = 1.5 * F.leaky_relu(raw, 0.2)  # s_r outside the LeakyReLU, as the authors
    assert torch.allclose(conv.attention_logits(AP, left, right, ei), expected)


def test_edge_weights_are_an_attention_prior():
    torch.manual_seed(0)
    conv = LATTEConv(IN, 8, METADATA, attn_dropout=0.0, edge_weight="attention")
    x = features()
    _, (plain, _) = conv(x, EDGES, return_attention_weights=True)
    w = torch.tensor([1.0, 3.0, 0.5, 2.0])  # AP: author -> paper, targets [0, 0, 1, 2]
    out_w, (weighted, _) = conv(x, EDGES, {AP: w}, return_attention_weights=True)
    # softmax(e + log w) = alpha * w, renormalised per target.
    target = EDGES[AP][1]
    expected = plain[AP][1] * w[:, None]
    expected = expected / torch.zeros(3, 1).index_add_(0, target, expected)[target]
    assert torch.allclose(weighted[AP][1], expected, atol=1e-6)
    assert not torch.allclose(out_w["paper"], conv(x, EDGES)["paper"])
    # A constant factor per target node is absorbed by the softmax.
    same = conv(x, EDGES, {AP: torch.tensor([2.0, 2.0, 5.0, 7.0])})
    assert torch.allclose(same["paper"], conv(x, EDGES)["paper"], atol=1e-6)


def test_edge_weights_as_message_factors_and_ignored():
    torch.manual_seed(0)
    x = features(sparse_author=False)
    w = torch.tensor([1.0, 3.0, 0.5, 2.0])
    conv = LATTEConv(IN, 8, METADATA, attn_dropout=0.0, edge_weight="message")
    out, (alphas, betas) = conv(x, EDGES, {AP: w}, return_attention_weights=True)
    alphas[AP] = (alphas[AP][0], alphas[AP][1] * w[:, None])  # returned alpha: before w
    assert torch.allclose(out["paper"], by_hand(conv, x, alphas, betas, "paper", 3), atol=1e-5)
    conv.edge_weight = "none"
    assert torch.allclose(conv(x, EDGES, {AP: w})["paper"], conv(x, EDGES)["paper"])


def test_proximity_loss_by_hand():
    torch.manual_seed(0)
    conv = LATTEConv(IN, 6, METADATA, attn_dropout=0.0)
    x = features(sparse_author=False)
    _, (alphas, _), loss = conv(x, EDGES, return_attention_weights=True,
                                return_proximity_loss=True, num_negatives=0)
    expected = 0.0
    for rel in conv.relations:
        left = conv.lin_l[rel[2]](x[rel[2]]).view(NUM[rel[2]], 1, 6)
        right = conv.lin_r[rel[0]](x[rel[0]]).view(NUM[rel[0]], 1, 6)
        logits = conv.attention_logits(rel, left, right, EDGES[rel])[:, 0]
        expected = expected - (alphas[rel][1][:, 0] * F.logsigmoid(logits)).mean()
    assert torch.allclose(loss, expected / (2 * len(conv.relations)), atol=1e-6)
    # Negatives only add: -log sigmoid(-s) > 0.
    _, with_negatives = conv(x, EDGES, return_proximity_loss=True, num_negatives=2)
    assert with_negatives > loss


@pytest.mark.parametrize("init,std", [("xavier", 2 ** 0.5 * (2 / 400) ** 0.5),
                                      ("torch", (1 / (3 * 300)) ** 0.5)])
def test_initialisations(init, std):
    torch.manual_seed(0)
    conv = LATTEConv(300, 100, METADATA, init=init)
    weight = conv.lin_l["paper"].weight  # 100 x 300
    assert weight.std().item() == pytest.approx(std, rel=0.05)
    assert f"init='{init}'" in repr(conv)


def test_sparse_and_dense_inputs_agree():
    lin = torch.nn.Linear(5, 3)
    x = features(sparse_author=True)["author"]
    assert torch.allclose(typed_linear(lin, x), lin(x.to_dense()), atol=1e-6)


@pytest.mark.parametrize("aggr", ["mean", "max", "lstm", "lcm"])
def test_other_aggregators_drop_in(aggr):
    conv = LATTEConv(IN, 8, METADATA, aggr=aggr, heads=2)
    module = conv.aggrs[conv.key(AP)]
    if aggr in ("lstm", "lcm"):  # the one channel rule: resolve(aggr, channels=out_channels)
        assert module.in_channels == module.out_channels == 8
    out = conv(features(), EDGES)
    assert out["paper"].shape == (3, 8)
    out["paper"].sum().backward()


def test_sum_fast_path_matches_message_passing():
    from torch_geometric.nn.aggr import SumAggregation

    class PlainSum(SumAggregation):  # not exactly SumAggregation: the message-passing path
        pass

    torch.manual_seed(0)
    conv = LATTEConv(IN, 8, METADATA, heads=2, attn_dropout=0.0)
    x = features(sparse_author=False)
    fast = conv(x, EDGES)
    for key in conv.aggrs:
        conv.aggrs[key] = PlainSum()
    slow = conv(x, EDGES)
    for t in NUM:
        assert torch.allclose(fast[t], slow[t], atol=1e-5)


def test_pruning_keeps_target_embedding():
    # Output types that never reach the target do not change its embedding.
    torch.manual_seed(0)
    conv = LATTEConv(IN, 8, METADATA, attn_dropout=0.0)
    pruned = LATTEConv(IN, 8, (METADATA[0], [r for r in METADATA[1] if r[2] == "paper"]),
                       attn_dropout=0.0, output_node_types=["paper"])
    state = {k: v for k, v in conv.state_dict().items() if k in pruned.state_dict()}
    pruned.load_state_dict(state)
    assert torch.allclose(conv(features(), EDGES)["paper"], pruned(features(), EDGES)["paper"])


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="relation"):
        LATTEConv(4, 8, (["a"], [("a", "r", "b")]))
    with pytest.raises(ValueError, match="heads"):
        LATTEConv(IN, 8, METADATA, heads=3)
    with pytest.raises(ValueError, match="edge_weight"):
        LATTEConv(IN, 8, METADATA, edge_weight="scale")
    conv = LATTEConv(IN, 8, METADATA)
    x = features()
    x["paper"] = torch.randn(3, 7)
    with pytest.raises(ValueError, match="shape"):
        conv(x, EDGES)
    with pytest.raises(ValueError, match="edge_index"):
        conv(features(), {k: v for k, v in EDGES.items() if k[1] != "PA"})
    with pytest.raises(ValueError, match="edge weights"):
        conv(features(), EDGES, {AP: torch.ones(3)})
    assert "LATTEConv(" in repr(conv) and "heads=1" in repr(conv)
