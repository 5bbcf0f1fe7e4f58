"""The blocked LCM tree and packed GRU (hand-written backward passes, gate
kernels eager or compiled) against the same arithmetic in plain autograd."""
import pytest
import torch

from gnnagg.aggr import _fused, _lcm_tree, _packed
from gnnagg.aggr import GRUAggregation, LCMAggregation
from gnnagg.aggr._packed import _final_rows, packed_gru, packed_gru_plain
from gnnagg.ops import build_pack_plan, build_tree_plan, segment_layout
from gnnagg.testing import random_segments

pytestmark = pytest.mark.usefixtures("one_thread")

DEGREES = [3, 0, 1, 9, 2, 2, 17, 5, 1, 6]


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows, so that the tiny fixture crosses block and
    unit boundaries as a large graph does."""
    monkeypatch.setattr(_lcm_tree, "BLOCK_PAIRS", 2)
    monkeypatch.setattr(_packed, "BLOCK_ROWS", 3)


def _lcm_case(device, dtype=torch.float64):
    torch.manual_seed(0)
    x, index, ptr = random_segments(DEGREES, 5, dtype=dtype, device=device)
    cell = torch.nn.GRUCell(5, 5).to(device, dtype)
    weight = torch.cat([cell.weight_ih, cell.weight_hh]).detach().requires_grad_(True)
    bias = torch.cat([cell.bias_ih, cell.bias_hh]).detach().requires_grad_(True)
    identity = torch.randn(5, dtype=dtype, device=device, requires_grad=True)
    plan = segment_layout(ptr=ptr, num_elements=x.size(0)).plan("tree", build_tree_plan)
    return x.requires_grad_(True), weight, bias, identity, plan


def _grads(out, inputs, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.autograd.grad(out, inputs, torch.randn(out.shape, generator=g, dtype=out.dtype)
                               .to(out.device))


def test_lcm_tree_equals_plain_autograd(small_blocks, device):
    x, weight, bias, identity, plan = _lcm_case(device)
    fast = _lcm_tree.gru_tree(x, weight, bias, identity, plan)
    plain = _lcm_tree._plain(x, weight, bias, identity, plan)
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-12)
    for a, b in zip(_grads(fast, (x, weight, bias, identity)),
                    _grads(plain, (x, weight, bias, identity))):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    # Without biases, too.
    fast = _lcm_tree.gru_tree(x, weight, None, identity, plan)
    plain = _lcm_tree._plain(x, weight, None, identity, plan)
    torch.testing.assert_close(fast, plain, rtol=0, atol=1e-12)


def _gru_case(device, dtype=torch.float64):
    torch.manual_seed(0)
    x, _, ptr = random_segments(DEGREES, 4, dtype=dtype, device=device)
    rnn = torch.nn.GRU(4, 3).to(device, dtype)
    weights = [p.detach().requires_grad_(True) for p in
               (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)]
    plan = segment_layout(ptr=ptr, num_elements=x.size(0)).plan("pack", build_pack_plan)
    return x.requires_grad_(True), weights, plan


def test_packed_gru_equals_plain_autograd(small_blocks, device):
    x, weights, plan = _gru_case(device)
    final, states = packed_gru(x, plan.src_of, plan.pos_of, plan.batch_sizes, *weights)
    plain_states = packed_gru_plain(x.index_select(0, plan.src_of), plan.batch_sizes, *weights)
    plain_final = _final_rows(plain_states, plan.batch_sizes)
    torch.testing.assert_close(states, plain_states, rtol=0, atol=1e-12)
    torch.testing.assert_close(final, plain_final, rtol=0, atol=1e-12)
    # Gradients through the final states and through every state.
    for outs in ((final,), (final, states)):
        plain = (plain_final, plain_states)[:len(outs)]
        loss = sum(o.pow(2).sum() for o in outs)
        plain_loss = sum(o.pow(2).sum() for o in plain)
        for a, b in zip(torch.autograd.grad(loss, [x] + weights, retain_graph=True),
                        torch.autograd.grad(plain_loss, [x] + weights, retain_graph=True)):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.slow  # compiles four kernels (seconds each; inductor caches them on disk)
def test_compiled_kernels_equal_eager_ones(monkeypatch, small_blocks, device):
    # The aggregators as users call them, with GNNAGG_FUSED=1 (compiled
    # kernels even for tiny inputs) against GNNAGG_FUSED=0.
    x, index, _ = random_segments(DEGREES, 6, device=device)
    results = {}
    for mode in ("0", "1"):
        monkeypatch.setenv("GNNAGG_FUSED", mode)
        for cls in (LCMAggregation, GRUAggregation):
            torch.manual_seed(0)
            aggr = cls(6, 6).to(device)
            xr = x.clone().requires_grad_(True)
            out = aggr(xr, index, dim_size=len(DEGREES))
            grads = _grads(out, [xr] + list(aggr.parameters()))
            results[mode, cls] = (out,) + grads
    assert not _fused._STATE["failed"]
    for cls in (LCMAggregation, GRUAggregation):
        for a, b in zip(results["0", cls], results["1", cls]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_failed_compilation_falls_back_with_one_warning(monkeypatch):
    monkeypatch.setenv("GNNAGG_FUSED", "1")
    monkeypatch.setitem(_fused._STATE, "failed", False)
    kernel = _fused.Kernel(_fused._step_forward)

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch, "compile", broken)
    gi, gh, h = torch.randn(4, 6), torch.randn(4, 6), torch.randn(4, 2)
    out = torch.empty(4, 2)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler.*unfused"):
        saved = kernel(gi, gh, h, None, None, out, fused=True)
    expected = torch.empty(4, 2)
    torch.testing.assert_close(saved, _fused._step_forward(gi, gh, h, None, None, expected))
    torch.testing.assert_close(out, expected)
    assert not _fused.fusion_wanted(10**9)  # given up for this process


def test_fusion_modes(monkeypatch):
    monkeypatch.setitem(_fused._STATE, "failed", False)
    monkeypatch.setenv("GNNAGG_FUSED", "auto")
    assert not _fused.fusion_wanted(100) and _fused.fusion_wanted(_fused.FUSE_MIN_ELEMENTS)
    monkeypatch.setenv("GNNAGG_FUSED", "0")
    assert not _fused.fusion_wanted(10**9)
    monkeypatch.setenv("GNNAGG_FUSED", "1")
    assert _fused.fusion_wanted(1)


def test_tanh_via_sigmoid_is_close_to_tanh():
    x = torch.linspace(-20, 20, 10001, dtype=torch.float64)
    assert (_fused._tanh(x) - torch.tanh(x)).abs().max() < 1e-15
    x = x.float()
    assert (_fused._tanh(x) - torch.tanh(x)).abs().max() < 3e-7
