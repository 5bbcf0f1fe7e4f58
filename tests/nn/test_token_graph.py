"""Token graphs (gnnagg.nn.token_graph): hand-computed graphs, the vectorised
build against the per-sentence loop (any bucket size, both precisions, near
the threshold and at exact ties), the edgeless graph."""
import pytest
import torch

from gnnagg._backend import fast_bf16_matmul
from gnnagg.nn import (BF16_MARGIN, TokenGraph, build_token_graph, build_token_graph_loop,
                       empty_token_graph)

DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_threshold_graph_hand_computed(dtype, three_sentences):
    x, mask = three_sentences(dtype)
    g = build_token_graph(x, mask, tau=0.9, edge_weights=True)
    # cos(t0, t1) = 0.994 in sentence 0; cos = 0.995 in sentence 1 (nodes 4, 5).
    assert g.edge_index.tolist() == [[1, 0, 5, 4], [0, 1, 4, 5]]
    assert g.batch.tolist() == [0, 0, 0, 0, 1, 1, 2]
    assert g.ptr.tolist() == [0, 4, 6, 7]
    assert g.position.tolist() == [0, 1, 2, 3, 0, 1, 0]
    assert torch.equal(g.x, x[mask])
    assert g.x.abs().max() < 10  # no padding token became a node
    assert g.edge_weight.dtype == dtype
    assert torch.allclose(g.edge_weight[:2], torch.full((2,), 0.9 / 0.9055385, dtype=dtype))


@pytest.mark.parametrize("k,tau", [(None, 0.0), (None, 0.5), (1, None), (2, None), (3, 0.2), (10, None)])
def test_vectorised_equals_per_sentence_reference(k, tau):
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([5, 1, 9, 3, 0, 9, 2])  # includes an empty sentence
    L = int(lengths.max()) + 2
    mask = torch.arange(L) < lengths.unsqueeze(1)
    x = torch.randn(len(lengths), L, 6, generator=gen) + torch.randn(1, 1, 6, generator=gen)
    x[~mask] = 1e4
    slow = build_token_graph_loop(x, mask, tau, k, edge_weights=True)
    fast = build_token_graph(x, mask, tau, k, edge_weights=True, bucket_size=3)
    for precision in ("fp32", "bf16", "auto"):
        for bucket_size in (1, 3, 64):  # any bucket size
            other = build_token_graph(x, mask, tau, k, bucket_size=bucket_size, precision=precision)
            assert torch.equal(other.edge_index, slow.edge_index), (precision, bucket_size)
            assert other.edge_weight is None
    for name in ("x", "edge_index", "batch", "ptr", "position"):
        assert torch.equal(getattr(fast, name), getattr(slow, name)), name
    assert torch.allclose(fast.edge_weight, slow.edge_weight, atol=1e-6)
    src, dst = fast.edge_index
    assert torch.equal(fast.batch[src], fast.batch[dst])  # never across sentences
    assert (src != dst).all()
    assert mask[fast.batch[src], fast.position[src]].all()
    if k is not None:
        indeg = torch.bincount(dst, minlength=fast.num_nodes)
        sizes = (fast.ptr[1:] - fast.ptr[:-1])[fast.batch]
        assert (indeg <= torch.clamp(sizes - 1, max=k)).all()
        if tau is None:
            assert torch.equal(indeg, torch.clamp(sizes - 1, max=k))


def near_threshold_sentences(tau, d=384, lengths=(7, 30, 2, 19), seed=0):
    """Sentences whose token pairs have float32 cosines spread over
    tau +- 2 * BF16_MARGIN, many of them within 1e-3 of tau, at wildly
    different norms; right-padded with large junk."""
    gen = torch.Generator().manual_seed(seed)
    L = max(lengths) + 3
    x = torch.randn(len(lengths), L, d, generator=gen) * 1e3
    mask = torch.arange(L) < torch.tensor(lengths).unsqueeze(1)
    for b, n in enumerate(lengths):
        u, v = torch.linalg.qr(torch.randn(d, 2, generator=gen, dtype=torch.float64))[0].t()
        delta = (torch.rand(n, generator=gen, dtype=torch.float64) * 2 - 1) * 2 * BF16_MARGIN
        delta[::2] *= 0.02  # half of them very close to tau
        # every token is at cosine tau + delta_i from the sentence's anchor u
        theta = torch.acos((tau + delta).clamp(-1, 1))
        tokens = torch.cos(theta)[:, None] * u + torch.sin(theta)[:, None] * v
        tokens[0] = u  # the anchor itself
        scale = 10.0 ** torch.randint(-3, 4, (n, 1), generator=gen)
        x[b, :n] = (tokens * scale).float()
    return x, mask


@pytest.mark.parametrize("tau", [0.8, 0.3, -0.2, 0.99])
def test_bf16_screen_equals_fp32_loop_near_the_threshold(tau):
    x, mask = near_threshold_sentences(tau)
    slow = build_token_graph_loop(x, mask, tau)
    g = build_token_graph(x, mask, tau, precision="bf16")
    assert torch.equal(g.edge_index, slow.edge_index)
    assert torch.equal(build_token_graph(x, mask, tau, precision="fp32").edge_index, slow.edge_index)
    # the fixture does put pairs inside the recheck band, on both sides of tau
    hn = torch.nn.functional.normalize(x[0, :7], dim=-1)
    cos = (hn @ hn.t())[0, 1:]
    assert ((cos - tau).abs() < BF16_MARGIN).sum() >= 2
    assert (cos > tau).any() and (cos <= tau).any()
    # left padding, bfloat16 and float64 inputs: still the float32 graph of the same states
    left = mask.flip(1)
    x_left = torch.zeros_like(x)
    x_left[left] = x[mask]
    assert torch.equal(build_token_graph(x_left, left, tau, precision="bf16").edge_index, slow.edge_index)
    assert torch.equal(build_token_graph(x.double(), mask, tau, precision="bf16").edge_index,
                       build_token_graph_loop(x.double(), mask, tau).edge_index)
    xb = x.bfloat16()
    assert torch.equal(build_token_graph(xb, mask, tau, precision="bf16").edge_index,
                       build_token_graph_loop(xb, mask, tau).edge_index)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_exact_ties_are_decided_as_the_loop_decides_them(precision):
    """Identical, opposite and parallel tokens have cosines of exactly +-1 up
    to float32 rounding, which summation order decides; at tau = +-1 the
    graph must still be the loop's. Also d = 1, zero vectors, no sentences."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 9, 384, generator=gen)
    x[0, 1] = x[0, 0]
    x[1, 3] = -x[1, 0]
    x[1, 4] = 3 * x[1, 0]
    x[2, 5] = 0.5 * x[2, 2]
    x[2, 6] = 0.0
    mask = torch.ones(3, 9, dtype=torch.bool)
    inputs = [(x, mask), (torch.randn(2, 3, 1, generator=gen), torch.ones(2, 3, dtype=torch.bool)),
              (torch.randn(0, 4, 5), torch.zeros(0, 4, dtype=torch.bool)),
              (torch.randn(2, 4, 5), torch.zeros(2, 4, dtype=torch.bool))]
    for x, mask in inputs:
        for tau in (-1.0, -0.99, 0.0, 0.99, 1.0):
            slow = build_token_graph_loop(x, mask, tau)
            fast = build_token_graph(x, mask, tau, precision=precision)
            for name in ("edge_index", "batch", "ptr", "position"):
                assert torch.equal(getattr(fast, name), getattr(slow, name)), (tuple(x.shape), tau, name)


def test_bf16_rounding_stays_inside_the_margin():
    """The bound behind BF16_MARGIN, checked on adversarial data: vectors
    with a few huge components and many tiny ones, and near-parallel pairs."""
    gen = torch.Generator().manual_seed(1)
    d = 384
    a = torch.randn(64, d, generator=gen) * torch.rand(64, d, generator=gen) ** 8
    a[:, :3] *= 100
    b = a + 0.05 * torch.randn(64, d, generator=gen)
    h = torch.cat([a, b])
    exact = torch.nn.functional.normalize(h.double(), dim=-1)
    exact = exact @ exact.t()
    hb = h.bfloat16()
    inv = 1.0 / torch.linalg.vector_norm(h, dim=-1)
    approx = (hb @ hb.t()).float() * inv[:, None] * inv[None, :]
    assert (approx.double() - exact).abs().max() < 0.8 * BF16_MARGIN


def test_precision_option_and_bf16_detection():
    x, mask = near_threshold_sentences(0.8, d=16, lengths=(3, 4))
    with pytest.raises(ValueError, match="precision"):
        build_token_graph(x, mask, precision="fp16")
    assert isinstance(fast_bf16_matmul("cpu"), bool)
    assert fast_bf16_matmul(torch.device("cpu")) is fast_bf16_matmul("cpu")
    # k-NN graphs and edge weights are always float32; the option changes nothing
    for kwargs in ({"k": 2}, {"edge_weights": True}):
        a = build_token_graph(x, mask, 0.8, precision="bf16", **kwargs)
        b = build_token_graph_loop(x, mask, 0.8, **kwargs)
        assert torch.equal(a.edge_index, b.edge_index)


def test_node_states_are_gathered_on_first_access(three_sentences):
    x, mask = three_sentences()
    g = build_token_graph(x, mask, tau=0.9)
    assert g._x is None
    assert torch.equal(g.x, x[mask]) and g.x is g.x
    assert g.num_nodes == 7 and "num_edges=4" in repr(g)
    assert torch.equal(build_token_graph_loop(x, mask, tau=0.9).x, x[mask])


def test_threshold_graph_is_symmetric_and_rejects_bad_input():
    x = torch.randn(4, 6, 3)
    mask = torch.ones(4, 6, dtype=torch.bool)
    g = build_token_graph(x, mask, tau=0.1)
    edges = set(map(tuple, g.edge_index.t().tolist()))
    assert edges == {(j, i) for i, j in edges}
    with pytest.raises(ValueError, match="tau"):
        build_token_graph(x, mask, tau=1.5)
    with pytest.raises(ValueError, match="k must"):
        build_token_graph(x, mask, k=0)
    with pytest.raises(ValueError, match="mask must have shape"):
        build_token_graph(x, mask[:, :3])
    with pytest.raises(ValueError, match=r"\(B, L, d\)"):
        build_token_graph(x[0], mask[0])
    with pytest.raises(ValueError, match="tau, a neighbour count"):
        build_token_graph(x, mask, tau=None, k=None)


def test_left_padding_gives_the_same_graph():
    torch.manual_seed(0)
    lengths = torch.tensor([6, 3, 5])
    right = torch.arange(7) < lengths.unsqueeze(1)
    left = right.flip(1)
    x = torch.randn(3, 7, 4)
    x_left = torch.zeros_like(x)
    x_left[left] = x[right]
    a = build_token_graph(x, right, 0.0)
    b = build_token_graph(x_left, left, 0.0)
    assert a.num_edges > 0
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    assert torch.equal(b.position, left.nonzero(as_tuple=True)[1])


def test_empty_token_graph_has_the_nodes_and_no_edges(three_sentences):
    x, mask = three_sentences()
    g = build_token_graph(x, mask, tau=-1.0)
    e = empty_token_graph(x, mask.long())  # 0/1 integer masks are accepted
    # every ordered pair but the opposite tokens 0 and 3 (cosine exactly -1)
    assert g.num_edges == 4 * 3 - 2 + 2 * 1 and e.num_edges == 0
    assert e.edge_index.shape == (2, 0) and e.edge_index.dtype == torch.long
    for name in ("x", "batch", "ptr", "position"):
        assert torch.equal(getattr(e, name), getattr(g, name)), name
    assert isinstance(e, TokenGraph) and e.edge_weight is None
    with pytest.raises(ValueError, match="mask must have shape"):
        empty_token_graph(x, mask[:, :2])
