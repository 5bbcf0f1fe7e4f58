"""The compatibility suite: PyG 2.8's own tests for the learned aggregators,
the resolver and the convolutions that take ``aggr=``, ported to gnnagg's
classes as a user switching from PyG would write them. Every PyG assertion
is kept; where gnnagg deliberately differs, the assertion is replaced by one
of gnnagg's documented behaviour, with a comment saying why (search for
"Deliberate difference")."""
import pytest

from gnnagg.aggr import GRUAggregation, LCMAggregation, LSTMAggregation

OURS = {"lcm": LCMAggregation, "gru": GRUAggregation, "lstm": LSTMAggregation}


@pytest.fixture(params=sorted(OURS))
def name(request):
    """Each of gnnagg's learned aggregators, by short name."""
    return request.param


@pytest.fixture
def ours():
    """``ours[name](in_channels, out_channels)`` builds gnnagg's aggregator."""
    return OURS


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield
