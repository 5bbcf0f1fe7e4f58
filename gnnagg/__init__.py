"""gnnagg: graph neural network aggregation for PyTorch Geometric."""
from . import aggr, ops
from .swap import swap_aggregators

__version__ = "0.1.0"
__all__ = ["aggr", "ops", "swap_aggregators", "__version__"]
