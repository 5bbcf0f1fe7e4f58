import pytest
import torch
from torch_geometric.nn.aggr import LCMAggregation as PyGLCM
from torch_geometric.nn.aggr import MaxAggregation

from gnnagg.aggr import GRUAggregation, LCMAggregation
from gnnagg.models import SetModel

pytestmark = pytest.mark.usefixtures("one_thread")

# Three sets of 2, 3 and 1 elements (4-bit features), index sorted.
INDEX = torch.tensor([0, 0, 1, 1, 1, 2])


def features():
    return torch.randint(0, 2, (6, 4), generator=torch.Generator().manual_seed(0)).float()


def test_sum_model_is_decoder_of_summed_encodings():
    torch.manual_seed(0)
    model = SetModel(4, 8, 3, aggr="sum")
    x = features()
    out = model(x, INDEX, dim_size=3)
    assert out.shape == (3, 3)
    for s in range(3):
        expected = model.decoder(model.encoder(x[INDEX == s]).sum(0))
        torch.testing.assert_close(out[s], expected)


def test_aggregator_resolved_with_channels_or_taken_as_given():
    model = SetModel(4, 8, 1, aggr="lcm", aggr_kwargs=dict(project=False, activation="tanh"))
    assert isinstance(model.aggr, LCMAggregation)
    assert model.aggr.in_channels == 8 and model.aggr.activation == "tanh"
    assert isinstance(SetModel(4, 8, 1, aggr="gru").aggr, GRUAggregation)
    assert isinstance(SetModel(4, 8, 1, aggr=PyGLCM).aggr, PyGLCM)  # a class: PyG's own
    given = MaxAggregation()
    assert SetModel(4, 8, 1, aggr=given).aggr is given
    assert "aggr=LCMAggregation" in repr(model)


def test_element_order_does_not_matter():
    torch.manual_seed(0)
    model = SetModel(4, 8, 2, aggr="max").eval()
    x = features()
    perm = torch.tensor([1, 0, 4, 2, 3, 5])  # within each set
    torch.testing.assert_close(model(x, INDEX), model(x[perm], INDEX[perm]))


def test_embedding_encoder_and_empty_last_set():
    torch.manual_seed(0)
    model = SetModel(16, 8, 2, aggr="mean", encoder="embedding")
    values = torch.tensor([3, 15, 0, 0, 7, 9])
    out = model(values, INDEX, dim_size=4)  # set 3 is empty
    assert out.shape == (4, 2)
    torch.testing.assert_close(out[3], model.decoder(torch.zeros(8)))
    out.sum().backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kwargs, call, message", [
    (dict(), dict(x=torch.zeros(6, 5)), r"shape \(E, 4\)"),
    (dict(encoder="embedding"), dict(x=torch.zeros(6)), "long element values"),
    (dict(), dict(index=torch.zeros(5, dtype=torch.long)), "one set per element"),
])
def test_bad_input_is_named(kwargs, call, message):
    model = SetModel(4, 8, 1, **kwargs)
    args = {"x": features(), "index": INDEX, **call}
    with pytest.raises(ValueError, match=message):
        model(args["x"], args["index"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_channels=0), "hidden_channels"),
    (dict(encoder="onehot"), "encoder"),
    (dict(aggr=None), "needs an aggregator"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SetModel(**{"in_channels": 4, "hidden_channels": 8, "out_channels": 1, **kwargs})
