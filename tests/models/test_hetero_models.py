"""The heterogeneous baselines (HAN, HGT, R-GCN, HeteroConv-SAGE) on a tiny
typed graph with sparse features."""
import pytest
import torch
from torch_geometric.data import HeteroData

from gnnagg.models import HAN, HGT, RGCN, HeteroSAGE

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_graph(seed=0):
    g = torch.Generator().manual_seed(seed)
    data = HeteroData()
    data["paper"].x = (torch.rand(6, 5, generator=g) > 0.5).float().to_sparse()
    data["author"].x = (torch.rand(4, 5, generator=g) > 0.5).float().to_sparse()
    data["subject"].x = torch.eye(2, 5)
    pa = torch.tensor([[0, 1, 2, 3, 4, 5, 0], [0, 1, 2, 3, 0, 1, 3]])
    ps = torch.stack([torch.arange(6), torch.arange(6) % 2])
    data["paper", "PA", "author"].edge_index = pa
    data["author", "AP", "paper"].edge_index = pa.flip(0)
    data["paper", "PS", "subject"].edge_index = ps
    data["subject", "SP", "paper"].edge_index = ps.flip(0)
    return data


IN = {"paper": 5, "author": 5, "subject": 5}


@pytest.mark.parametrize("cls,kwargs", [(HAN, {"heads": 2}), (HGT, {"heads": 2}), (RGCN, {}),
                                        (HeteroSAGE, {}), (HeteroSAGE, {"aggr": "lstm"})])
def test_models_give_target_logits_and_train(cls, kwargs):
    torch.manual_seed(0)
    data = tiny_graph()
    model = cls(IN, 8, 3, data.metadata(), "paper", **kwargs)
    out = model(data.x_dict, data.edge_index_dict)
    assert out.shape == (6, 3) and torch.isfinite(out).all()
    out.sum().backward()
    assert model.classifier.weight.grad.abs().sum() > 0
    assert model.input.lins["paper"].weight.grad.abs().sum() > 0
    model.reset_parameters()
    # eval mode is deterministic (dropout off)
    model.eval()
    assert torch.equal(model(data.x_dict, data.edge_index_dict),
                       model(data.x_dict, data.edge_index_dict))


def test_han_uses_the_target_meta_paths():
    data = tiny_graph()
    model = HAN(IN, 8, 3, data.metadata(), "paper", heads=2)
    assert model.metapaths == [("paper", "PA.AP", "paper"), ("paper", "PS.SP", "paper")]
    edges = model.metapath_edges(data.edge_index_dict, {"paper": 6, "author": 4, "subject": 2})
    # PS.SP joins papers of the same subject: 3 x 3 pairs per subject.
    assert edges[("paper", "PS_SP", "paper")].size(1) == 18
    with pytest.raises(ValueError, match="meta-path"):
        HAN(IN, 8, 3, (["paper", "author"], [("paper", "PA", "author")]), "paper")


def test_rgcn_homogeneous_graph_matches_pyg():
    data = tiny_graph()
    model = RGCN(IN, 8, 3, data.metadata(), "paper")
    num = {t: data[t].num_nodes for t in data.node_types}
    edge_index, edge_type, offsets = model.homogeneous(num, data.edge_index_dict)
    ref = HeteroData()
    for t in data.node_types:
        ref[t].num_nodes = num[t]
    for r in data.edge_types:
        ref[r].edge_index = data[r].edge_index
    ref = ref.to_homogeneous()
    assert torch.equal(edge_index, ref.edge_index) and torch.equal(edge_type, ref.edge_type)
    assert offsets == {"paper": 0, "author": 6, "subject": 10}


def test_rgcn_builds_its_graph_on_the_edges_device():
    # The "meta" device stands in for a GPU: every new tensor must follow it.
    model = RGCN(IN, 8, 3, tiny_graph().metadata(), "paper")
    edges = {r: ei.to("meta") for r, ei in tiny_graph().edge_index_dict.items()}
    edge_index, edge_type, _ = model.homogeneous({"paper": 6, "author": 4, "subject": 2}, edges)
    assert edge_index.device.type == "meta" and edge_type.device.type == "meta"


def test_hetero_sage_is_a_sum_of_sage_convs():
    torch.manual_seed(0)
    data = tiny_graph()
    model = HeteroSAGE(IN, 8, 3, data.metadata(), "paper", num_layers=1, dropout=0.0)
    model.eval()
    h = {t: torch.relu(v) for t, v in model.input(data.x_dict).items()}
    convs = model.convs[0].convs
    by_hand = sum(convs[r]((h[r[0]], h[r[2]]), data[r].edge_index)
                  for r in data.edge_types if r[2] == "paper")
    assert torch.allclose(model(data.x_dict, data.edge_index_dict), model.classifier(by_hand),
                          atol=1e-6)
    lstm = HeteroSAGE(IN, 8, 3, data.metadata(), "paper", aggr="lstm")
    aggr = lstm.convs[0].convs[("author", "AP", "paper")].aggr_module
    assert (aggr.in_channels, aggr.out_channels) == (8, 8)  # the one channel rule


def test_bad_arguments_raise():
    meta = tiny_graph().metadata()
    with pytest.raises(ValueError, match="target node type"):
        HGT(IN, 8, 3, meta, "venue")
    with pytest.raises(ValueError, match="lacks"):
        RGCN({"paper": 5}, 8, 3, meta, "paper")
    with pytest.raises(ValueError, match="num_layers"):
        HeteroSAGE(IN, 8, 3, meta, "paper", num_layers=0)
