import pytest
import torch

from gnnagg import _backend
from gnnagg.ops import REDUCTIONS, logsumexp, ptr_to_index, scatter, segment, softmax

# Segment 1 is empty and dim_size (5) exceeds the largest index (3) + 1.
SRC = torch.tensor([[1.0, -2.0], [3.0, 0.5], [-1.0, 4.0], [2.0, 2.0], [0.5, -3.0], [5.0, 1.0]])
INDEX = torch.tensor([2, 0, 2, 0, 3, 2])
DIM_SIZE = 5


def reference(src, index, dim_size, reduce, fill_value=None, correction=0):
    """Direct Python computation, segment by segment."""
    rows = []
    for i in range(dim_size):
        seg = src[index == i]
        if seg.numel() == 0:
            empty = 1.0 if reduce in ("mul", "prod") else 0.0
            rows.append(torch.full(src.shape[1:], empty if fill_value is None else fill_value,
                                   dtype=src.dtype))
            continue
        n = seg.size(0)
        value = {
            "sum": lambda: seg.sum(0), "add": lambda: seg.sum(0), "mean": lambda: seg.mean(0),
            "min": lambda: seg.min(0).values, "max": lambda: seg.max(0).values,
            "mul": lambda: seg.prod(0), "prod": lambda: seg.prod(0),
            "var": lambda: ((seg - seg.mean(0)) ** 2).sum(0) / max(n - correction, 1),
            "std": lambda: (((seg - seg.mean(0)) ** 2).sum(0) / max(n - correction, 1)).sqrt(),
            "logsumexp": lambda: torch.logsumexp(seg, 0),
        }[reduce]()
        rows.append(value)
    return torch.stack(rows)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_scatter_matches_reference(reduce, dtype, device):
    src = SRC.to(dtype)
    expected = reference(src, INDEX, DIM_SIZE, reduce)
    out = scatter(src.to(device), INDEX.to(device), dim_size=DIM_SIZE, reduce=reduce)
    torch.testing.assert_close(out.cpu(), expected)


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_ptr_equals_sorted_index(reduce):
    perm = torch.argsort(INDEX, stable=True)
    src, index = SRC[perm], INDEX[perm]
    ptr = torch.tensor([0, 2, 2, 5, 6, 6])
    assert torch.equal(ptr_to_index(ptr), index)
    torch.testing.assert_close(segment(src, ptr, reduce=reduce),
                               scatter(src, index, dim_size=DIM_SIZE, reduce=reduce))


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min", "mul"])
def test_fill_value_for_empty_segments(reduce):
    out = scatter(SRC, INDEX, dim_size=DIM_SIZE, reduce=reduce, fill_value=-7.0)
    assert torch.all(out[1] == -7.0) and torch.all(out[4] == -7.0)
    torch.testing.assert_close(out[[0, 2, 3]], reference(SRC, INDEX, DIM_SIZE, reduce)[[0, 2, 3]])


def test_other_dim_and_shapes():
    src = torch.randn(3, 6, 2)
    out = scatter(src, INDEX, dim=1, dim_size=DIM_SIZE, reduce="max")
    assert out.shape == (3, DIM_SIZE, 2)
    for b in range(3):
        torch.testing.assert_close(out[b], reference(src[b], INDEX, DIM_SIZE, "max"))
    torch.testing.assert_close(scatter(src, INDEX, dim=-2, dim_size=DIM_SIZE), out * 0 + scatter(src.transpose(0, 1), INDEX, dim_size=DIM_SIZE).transpose(0, 1))


def test_var_correction():
    out = scatter(SRC, INDEX, dim_size=DIM_SIZE, reduce="var", correction=1)
    torch.testing.assert_close(out, reference(SRC, INDEX, DIM_SIZE, "var", correction=1))


def test_softmax_sums_to_one_and_matches_reference():
    out = softmax(SRC, INDEX)
    sums = scatter(out, INDEX, dim_size=DIM_SIZE)
    torch.testing.assert_close(sums[[0, 2, 3]], torch.ones(3, 2))
    for i in (0, 2, 3):
        torch.testing.assert_close(out[INDEX == i], torch.softmax(SRC[INDEX == i], 0))
    big = softmax(SRC * 1000, INDEX)  # stable for large logits
    assert torch.isfinite(big).all()


def test_logsumexp_is_stable():
    out = logsumexp(SRC * 1000, INDEX, dim_size=DIM_SIZE)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], torch.logsumexp(SRC[INDEX == 0] * 1000, 0))


@pytest.mark.parametrize("reduce", REDUCTIONS)
def test_gradcheck_float64(reduce):
    src = SRC.double().clone().requires_grad_(True)
    if reduce in ("min", "max"):  # ties have no gradient; SRC has none per column
        pass
    torch.autograd.gradcheck(lambda s: scatter(s, INDEX, dim_size=DIM_SIZE, reduce=reduce), (src,))


def test_softmax_gradcheck():
    src = SRC.double().clone().requires_grad_(True)
    torch.autograd.gradcheck(lambda s: softmax(s, INDEX), (src,))


def test_empty_input():
    src = torch.zeros(0, 3)
    index = torch.zeros(0, dtype=torch.long)
    for reduce in REDUCTIONS:
        out = scatter(src, index, dim_size=2, reduce=reduce)
        assert out.shape == (2, 3) and torch.isfinite(out).all()
    assert scatter(src, index, reduce="sum").shape == (0, 3)


@pytest.mark.parametrize("bad, error, match", [
    (dict(index=torch.tensor([0, 1, 2])), ValueError, "has 3 entries"),
    (dict(index=torch.tensor([0, 1, 2, 0, 1, -1])), ValueError, "negative"),
    (dict(index=torch.tensor([0, 1, 2, 0, 1, 9]), dim_size=5), ValueError, "out of range"),
    (dict(index=torch.tensor([0.0, 1, 2, 0, 1, 1])), TypeError, "integer dtype"),
    (dict(index=torch.zeros(6, 1, dtype=torch.long)), ValueError, "one-dimensional"),
    (dict(index=INDEX, reduce="median"), ValueError, "unknown reduction"),
    (dict(index=INDEX, dim=3), ValueError, "out of range for a tensor"),
    (dict(ptr=torch.tensor([0, 2, 7])), ValueError, "must end at"),
    (dict(ptr=torch.tensor([1, 2, 6])), ValueError, "must start at 0"),
    (dict(ptr=torch.tensor([0, 4, 2, 6])), ValueError, "non-decreasing"),
    (dict(ptr=torch.tensor([0, 2, 6]), dim_size=3), ValueError, "does not match"),
    (dict(), ValueError, "one of 'index' or 'ptr'"),
])
def test_bad_input_is_named(bad, error, match):
    kwargs = dict(bad)
    with pytest.raises(error, match=match):
        scatter(SRC, **kwargs)


# Special values, pytorch_scatter style: one segment per case, hand-computed
# results. Segment 4 is empty.
INF, NAN = float("inf"), float("nan")
SPECIAL_SRC = [0.0, 2e-6,            # 0: a spread far below 1e-6
               1.0, NAN,             # 1: NaN
               1.0, INF,             # 2: +inf
               -INF, -INF,           # 3: all -inf
               3.0, 3.0, 3.0,        # 5: constant
               INF, -INF,            # 6: inf - inf
               1000.0, 1000.0625]    # 7: small spread on a large offset (exact in fp32)
SPECIAL_INDEX = [0, 0, 1, 1, 2, 2, 3, 3, 5, 5, 5, 6, 6, 7, 7]
LN2, LN3 = 0.6931471805599453, 1.0986122886681098
SPECIAL_EXPECTED = {
    #            0            1    2     3     4    5            6     7
    "sum": [2e-6, NAN, INF, -INF, 0.0, 9.0, NAN, 2000.0625],
    "mean": [1e-6, NAN, INF, -INF, 0.0, 3.0, NAN, 1000.03125],
    "max": [2e-6, NAN, INF, -INF, 0.0, 3.0, INF, 1000.0625],
    "min": [0.0, NAN, 1.0, -INF, 0.0, 3.0, -INF, 1000.0],
    "var": [1e-12, NAN, NAN, NAN, 0.0, 0.0, NAN, 1 / 1024],
    "std": [1e-6, NAN, NAN, NAN, 0.0, 0.0, NAN, 1 / 32],
    # log(1 + e^(2e-6)) = ln 2 + 1e-6 + O(1e-12); 1000.0625 + log(1 + e^(-1/16))
    "logsumexp": [LN2 + 1e-6, NAN, INF, -INF, 0.0, 3.0 + LN3, INF, 1000.0625 + 0.6628073572085196],
}
DTYPES = [torch.float32, torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce", sorted(SPECIAL_EXPECTED))
def test_special_values_hand_computed(reduce, dtype):
    src = torch.tensor(SPECIAL_SRC, dtype=dtype)
    out = scatter(src, torch.tensor(SPECIAL_INDEX), dim_size=8, reduce=reduce)
    expected = torch.tensor(SPECIAL_EXPECTED[reduce], dtype=dtype)
    torch.testing.assert_close(out, expected, equal_nan=True, atol=0, rtol=2e-6)


TORCH_REDUCTIONS = {
    "sum": lambda s: s.sum(0), "mean": lambda s: s.mean(0), "max": lambda s: s.amax(0),
    "min": lambda s: s.amin(0), "mul": lambda s: s.prod(0),
    "var": lambda s: s.var(0, correction=0), "std": lambda s: s.std(0, correction=0),
    "logsumexp": lambda s: torch.logsumexp(s, 0),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce", sorted(TORCH_REDUCTIONS))
def test_each_segment_matches_torch_alone(reduce, dtype):
    # Two columns (the second a permutation of values within the segments),
    # so that where NaN/inf sit does not matter.
    src = torch.tensor(SPECIAL_SRC, dtype=dtype)
    index = torch.tensor(SPECIAL_INDEX)
    two = torch.stack([src, src.flip(0)], 1)
    two_index = torch.stack([index, index.flip(0)], 1)
    for col in range(2):
        x, idx = two[:, col], two_index[:, col]
        perm = torch.argsort(idx, stable=True)
        out = scatter(x[perm], idx[perm], dim_size=8, reduce=reduce)
        for i in idx.unique().tolist():
            expected = TORCH_REDUCTIONS[reduce](x[idx == i])
            torch.testing.assert_close(out[i], expected, equal_nan=True, rtol=2e-6, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_of_special_segments_matches_torch(dtype):
    # -inf entries are a mask (0); an all -inf segment is NaN, as torch.softmax.
    src = torch.tensor([0.0, -INF, LN3, -INF, -INF, 1.0, INF, NAN, 2.0], dtype=dtype)
    index = torch.tensor([0, 0, 0, 1, 1, 2, 2, 3, 3])
    out = softmax(src, index)
    expected = torch.tensor([0.25, 0.0, 0.75, NAN, NAN, NAN, NAN, NAN, NAN], dtype=dtype)
    torch.testing.assert_close(out, expected, equal_nan=True)
    for i in range(4):
        torch.testing.assert_close(out[index == i], torch.softmax(src[index == i], 0),
                                   equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_entries_have_zero_gradient(dtype):
    # softmax and logsumexp over segments with -inf entries: the finite
    # entries get torch's gradient, the -inf ones 0, an all -inf segment 0.
    src = torch.tensor([0.0, -INF, LN3, -INF, -INF], dtype=dtype, requires_grad=True)
    index = torch.tensor([0, 0, 0, 1, 1])
    (softmax(src, index)[[0, 2]] * torch.tensor([1.0, 3.0], dtype=dtype)).sum().backward()
    # d(p0 + 3 p2)/dx0 = p0 (1 - p0) - 3 p0 p2 = 3/16 - 9/16
    torch.testing.assert_close(src.grad[[0, 1, 2]],
                               torch.tensor([-6 / 16, 0.0, 6 / 16], dtype=dtype))
    src.grad = None
    out = logsumexp(src, index, dim_size=2)
    torch.testing.assert_close(out, torch.tensor([2 * LN2, -INF], dtype=dtype))
    out[0].backward(retain_graph=True)
    torch.testing.assert_close(src.grad, torch.tensor([0.25, 0, 0.75, 0, 0], dtype=dtype))
    src.grad = None
    out[1].backward()
    assert torch.equal(src.grad, torch.zeros(5, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_std_of_constant_segment_has_zero_gradient(dtype):
    src = torch.tensor([3.0, 3.0, 3.0, 1.0, 2.0], dtype=dtype, requires_grad=True)
    index = torch.tensor([0, 0, 0, 1, 1])
    out = scatter(src, index, reduce="std")
    assert out[0].item() == 0.0
    out.sum().backward()
    # segment 1: d std / dx = (x - mean) / (n std) = -+0.5 / (2 * 0.5)
    torch.testing.assert_close(src.grad, torch.tensor([0, 0, 0, -0.5, 0.5], dtype=dtype))


@pytest.mark.parametrize("reduce", ["var", "std"])
def test_var_std_gradcheck_with_constant_segment(reduce):
    # The std of a constant segment is not differentiable; its gradient is
    # defined as 0, which is also the symmetric finite difference.
    src = torch.tensor([[3.0, 1.0], [3.0, 2.0], [3.0, 4.0], [1.0, 0.5], [2.0, 0.25]],
                       dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, 0, 0, 2, 2])
    torch.autograd.gradcheck(lambda s: scatter(s, index, dim_size=3, reduce=reduce), (src,))


def test_index_and_ptr_must_agree():
    ptr = torch.tensor([0, 2, 5, 6])
    src = torch.arange(6.0)
    agree = torch.tensor([0, 0, 1, 1, 1, 2])
    torch.testing.assert_close(scatter(src, agree, ptr=ptr), torch.tensor([1.0, 9.0, 5.0]))
    torch.testing.assert_close(segment(src, ptr), scatter(src, agree, ptr=ptr))
    with pytest.raises(ValueError, match="'index' and 'ptr' disagree: element 2 is in "
                                         "segment 0 by 'index' but in segment 1 by 'ptr'"):
        scatter(src, torch.tensor([0, 0, 0, 1, 1, 2]), ptr=ptr)
    with pytest.raises(ValueError, match="disagree"):
        softmax(src, torch.tensor([1, 1, 0, 0, 0, 2]), ptr=ptr)
    with pytest.raises(ValueError, match="has 5 entries but 'ptr' describes 6"):
        scatter(src, torch.tensor([0, 0, 1, 1, 1]), ptr=ptr)


def _has_torch_scatter():
    try:
        import torch_scatter  # noqa: F401
        return True
    except Exception:
        return False


@pytest.mark.skipif(not _has_torch_scatter(), reason="torch_scatter is not installed")
@pytest.mark.parametrize("reduce", ["sum", "mean", "min", "max", "mul"])
@pytest.mark.parametrize("use_ptr", [False, True])
def test_backends_agree(monkeypatch, reduce, use_ptr):
    perm = torch.argsort(INDEX, stable=True)
    src, index = SRC[perm], INDEX[perm]
    ptr = torch.tensor([0, 2, 2, 5, 6, 6])
    kwargs = dict(ptr=ptr) if use_ptr else dict(index=index, dim_size=DIM_SIZE)
    monkeypatch.setenv("GNNAGG_BACKEND", "torch_scatter")
    monkeypatch.setattr(_backend, "_CHOICE", None)
    a = scatter(src, reduce=reduce, **kwargs)
    monkeypatch.setattr(_backend, "_CHOICE", False)
    b = scatter(src, reduce=reduce, **kwargs)
    torch.testing.assert_close(a, b)
