"""PyG 2.8's test/nn/conv/test_general_conv.py with gnnagg's aggregators
passed as ``aggr=``. GeneralConv aggregates ``(E, heads, out_channels)``
messages (dim 0), which gnnagg reduces as ``heads * out_channels`` channels:
``message_channels`` gives that width."""
import pytest
import torch

from torch_geometric.nn import GeneralConv


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(skip_linear=True),
    dict(directed_msg=False),
    dict(heads=3),
    dict(attention=True),
    dict(heads=3, attention=True),
    dict(heads=3, attention=True, attention_type='dot_product'),
    dict(l2_normalize=True),
])
def test_general_conv(kwargs, ours, name):
    from gnnagg.aggr import message_channels

    x = torch.randn(4, 8)
    edge_index = torch.tensor([[0, 1, 2, 3], [0, 0, 1, 1]])
    edge_attr = torch.randn(edge_index.size(1), 16)
    width = message_channels('GeneralConv', 8, 32, heads=kwargs.get('heads', 1))

    conv = GeneralConv(8, 32, aggr=ours[name](width, width), **kwargs)
    assert str(conv) == 'GeneralConv(8, 32)'

    out = conv(x, edge_index)
    assert out.size() == (4, 32)

    conv = GeneralConv(8, 32, in_edge_channels=16, aggr=ours[name](width, width), **kwargs)
    assert str(conv) == 'GeneralConv(8, 32)'

    out = conv(x, edge_index, edge_attr)
    assert out.size() == (4, 32)
