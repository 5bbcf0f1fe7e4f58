"""``GraphCache``: one entry per graph (by its edge tensors), the least
recently used evicted first. (Relation composition is tested with LATTE, in
tests/models/test_latte_model.py.)"""
import torch

from gnnagg.nn.relations import GraphCache, adjacency, sort_by_target

R = ("a", "to", "b")


def test_graph_cache_computes_once_per_graph_and_evicts_the_oldest():
    cache, calls = GraphCache(size=2), []

    def compute(tag):
        return lambda: (calls.append(tag) or tag, "second result")

    g1, g2, g3 = ({R: torch.tensor([[0, 1], [1, 0]])} for _ in range(3))
    assert cache.lookup(g1, [R], compute(1)) == (1, "second result")
    assert cache.lookup(g1, [R], compute(99)) == (1, "second result")  # same tensors: cached
    assert cache.lookup(g1, [R], compute(2), extra_key=(5,)) == (2, "second result")
    cache.lookup(g2, [R], compute(3))
    assert calls == [1, 2, 3] and len(cache) == 2  # g1's first entry was evicted
    entry = next(iter(cache.values()))
    assert entry[0][0] is g1[R] and entry[1:] == (2, "second result")  # holds the tensors
    cache.lookup(g3, [R], compute(4))
    assert calls == [1, 2, 3, 4]


def test_graph_cache_keeps_the_graph_used_every_epoch():
    """A training graph sampled anew at every step must not push out the
    evaluation graph, looked up once per epoch."""
    cache, calls = GraphCache(size=2), []
    full = {R: torch.tensor([[0, 1], [1, 0]])}
    for step in range(4):
        cache.lookup({R: torch.tensor([[0], [1]])}, [R], lambda: (calls.append(step),))
        cache.lookup(full, [R], lambda: (calls.append("full"),))
    assert calls == [0, "full", 1, 2, 3]  # the full graph was composed once


def test_adjacency_and_sort_by_target():
    ei = torch.tensor([[2, 0, 1, 0], [1, 1, 0, 0]])
    a = adjacency(ei, (3, 2))
    assert a.to_dense().tolist() == [[1, 1], [1, 0], [0, 1]]
    edges, w = sort_by_target(ei, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert edges.tolist() == [[0, 1, 0, 2], [0, 0, 1, 1]] and w.tolist() == [4.0, 3.0, 2.0, 1.0]
    assert sort_by_target(ei, None)[1] is None
