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
