"""Aggregators that drop into any PyG layer (``aggr=``), and the resolver.

* :class:`LCMAggregation`: learnable commutative monoid, O(log d) depth.
* :class:`GRUAggregation`, :class:`LSTMAggregation`: recurrent, O(d) depth.

All reduce ragged neighbourhoods without padding; see
:class:`SegmentAggregation`.
"""
from .base import SegmentAggregation, regularization_loss
from .lcm import GRUPairOperator, LCMAggregation, MLPPairOperator
from .recurrent import GRUAggregation, LSTMAggregation
from .channels import message_channels
from .layer import aggregated_width, layer_aggregator
from .projected import Projected
from .resolve import (AGGREGATORS, AggregatorCostWarning, aggregator_class, needs_channels,
                      resolve)

__all__ = [
    "SegmentAggregation", "LCMAggregation", "GRUAggregation", "LSTMAggregation",
    "GRUPairOperator", "MLPPairOperator", "resolve", "aggregator_class", "needs_channels",
    "regularization_loss", "AGGREGATORS", "message_channels", "Projected",
    "AggregatorCostWarning", "layer_aggregator", "aggregated_width",
]
