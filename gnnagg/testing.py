"""Reusable assertions for aggregators (in the spirit of e3nn's
``assert_equivariant``): each aggregator's test calls these on small fixed
fixtures instead of re-deriving the checks.

Every function takes ``aggr`` (an ``Aggregation`` module, put in ``eval()``
mode so that random neighbour orders and dropout are off) and raises
``AssertionError`` with the size of the violation when the property fails.
"""
from __future__ import annotations

import copy
from typing import Callable, Optional

import torch
from torch import Tensor
from torch_geometric.nn.aggr import Aggregation


def _close(a: Tensor, b: Tensor, atol: float, what: str) -> None:
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}")
    err = (a - b).abs().max().item() if a.numel() else 0.0
    if not err <= atol:
        raise AssertionError(f"{what}: max abs difference {err:.3g} > {atol:.3g}")


def random_segments(degrees, channels: int, dtype=torch.float32, seed: int = 0, device=None):
    """Elements for segments of the given sizes: ``(x, index, ptr)``, index
    sorted, on ``device`` (the same values on every device)."""
    g = torch.Generator().manual_seed(seed)
    degrees = torch.as_tensor(degrees, dtype=torch.long)
    index = torch.repeat_interleave(torch.arange(degrees.numel()), degrees)
    x = torch.randn(int(degrees.sum()), channels, generator=g, dtype=dtype)
    ptr = torch.cat([degrees.new_zeros(1), degrees.cumsum(0)])
    return x.to(device), index.to(device), ptr.to(device)


def assert_batch_independent(aggr: Aggregation, x: Tensor, index: Tensor,
                             dim_size: int, atol: float = 1e-6) -> None:
    """Each segment's output equals the output of that segment alone: what
    else is in the batch (e.g. a high-degree node) changes nothing."""
    aggr.eval()
    out = aggr(x, index, dim_size=dim_size)
    for i in range(dim_size):
        mask = index == i
        alone = aggr(x[mask], torch.zeros(int(mask.sum()), dtype=torch.long, device=x.device),
                     dim_size=1)
        _close(out[i:i + 1], alone, atol, f"segment {i} batched vs alone")


def assert_index_ptr_agree(aggr: Aggregation, x: Tensor, index: Tensor, ptr: Tensor,
                           atol: float = 1e-6) -> None:
    """The COO (``index``) and CSR (``ptr``) forms give the same output."""
    aggr.eval()
    _close(aggr(x, index, dim_size=ptr.numel() - 1), aggr(x, ptr=ptr), atol, "index vs ptr")


def assert_unsorted_equals_sorted(aggr: Aggregation, x: Tensor, index: Tensor,
                                  dim_size: int, atol: float = 1e-6, seed: int = 0) -> None:
    """Shuffling the elements across segments, keeping each segment's
    internal order, gives the same output (the index need not be sorted)."""
    aggr.eval()
    if index.numel() > 1 and bool((index[1:] < index[:-1]).any()):
        raise ValueError("the fixture's index must be sorted")
    g = torch.Generator().manual_seed(seed)
    # Random keys, re-dealt so that they increase within each segment; the
    # order by key then interleaves segments but keeps each one's order.
    r = torch.rand(index.numel(), generator=g, dtype=torch.float64)
    cpu_index = index.cpu()
    by_r = torch.argsort(r)
    by_index_then_r = by_r[torch.argsort(cpu_index[by_r], stable=True)]
    perm = torch.argsort(r[by_index_then_r]).to(index.device)
    _close(aggr(x, index, dim_size=dim_size), aggr(x[perm], index[perm], dim_size=dim_size),
           atol, "unsorted vs sorted index")


def assert_permutation_invariant(aggr: Aggregation, x: Tensor, index: Tensor,
                                 dim_size: int, atol: float = 1e-5, seed: int = 0) -> None:
    """Any order of the neighbours within a segment gives the same output."""
    aggr.eval()
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(index.numel(), generator=g)
    perm = perm[torch.argsort(index.cpu()[perm], stable=True)].to(index.device)
    _close(aggr(x, index, dim_size=dim_size), aggr(x[perm], index[perm], dim_size=dim_size),
           atol, "permuted neighbours")


def assert_not_permutation_invariant(aggr: Aggregation, x: Tensor, index: Tensor,
                                     dim_size: int, seed: int = 0) -> None:
    """The documented absence: some order of neighbours changes the output."""
    try:
        assert_permutation_invariant(aggr, x, index, dim_size, atol=1e-7, seed=seed)
    except AssertionError:
        return
    raise AssertionError(f"{type(aggr).__name__} says it is not permutation invariant, "
                         f"but permuting neighbours changed nothing")


def assert_empty_and_isolated(aggr: Aggregation, channels: int,
                              expected_empty: Optional[Tensor] = None,
                              dtype: torch.dtype = torch.float32, device=None) -> None:
    """No elements at all, and segments without elements, are well defined
    (finite; equal to ``expected_empty`` when given)."""
    aggr.eval()
    x = torch.randn(0, channels, dtype=dtype, device=device)
    out = aggr(x, torch.zeros(0, dtype=torch.long, device=device), dim_size=3)
    if out.size(0) != 3 or not torch.isfinite(out).all():
        raise AssertionError(f"empty input: got shape {tuple(out.shape)} / non-finite values")
    if expected_empty is not None:
        _close(out, expected_empty.expand_as(out), 1e-7, "empty segments")
    x = torch.randn(2, channels, dtype=dtype, device=device)
    out = aggr(x, torch.tensor([1, 1], device=device), dim_size=4)  # segments 0, 2, 3 empty
    if out.size(0) != 4 or not torch.isfinite(out).all():
        raise AssertionError("isolated nodes: wrong shape or non-finite output")
    _close(out[0], out[2], 0.0, "isolated nodes agree")


def assert_gradcheck(aggr: Aggregation, x: Tensor, index: Tensor, dim_size: int) -> None:
    """Analytic gradients match finite differences in float64 (inputs and
    parameters)."""
    module = copy.deepcopy(aggr).double().eval()
    x = x.detach().double().requires_grad_(True)
    params = [p for p in module.parameters() if p.requires_grad]

    if not torch.autograd.gradcheck(lambda x_: module(x_, index, dim_size=dim_size), (x,),
                                    eps=1e-6, atol=1e-5):
        raise AssertionError("gradcheck failed w.r.t. the input")
    if params:
        from torch.func import functional_call

        names = [n for n, p in module.named_parameters() if p.requires_grad]

        def f(*ps):
            return functional_call(module, dict(zip(names, ps)), (x.detach(), index),
                                   {"dim_size": dim_size})

        if not torch.autograd.gradcheck(f, tuple(p.detach().requires_grad_(True) for p in params),
                                        eps=1e-6, atol=1e-5):
            raise AssertionError("gradcheck failed w.r.t. the parameters")


def assert_gradgradcheck(aggr: Aggregation, x: Tensor, index: Tensor, dim_size: int,
                         parameters: bool = True) -> None:
    """Second derivatives match finite differences in float64 (inputs and,
    with ``parameters``, parameters): double backward works, as gradient
    penalties, forces as gradients of an energy and MAML need."""
    module = copy.deepcopy(aggr).double().eval()
    x = x.detach().double().requires_grad_(True)
    if not torch.autograd.gradgradcheck(lambda x_: module(x_, index, dim_size=dim_size), (x,),
                                        eps=1e-6, atol=1e-5):
        raise AssertionError("gradgradcheck failed w.r.t. the input")
    if parameters:
        from torch.func import functional_call

        names = [n for n, p in module.named_parameters() if p.requires_grad]

        def f(*ps):
            return functional_call(module, dict(zip(names, ps)), (x.detach(), index),
                                   {"dim_size": dim_size})

        ps = tuple(p.detach().requires_grad_(True) for n, p in module.named_parameters()
                   if p.requires_grad)
        if ps and not torch.autograd.gradgradcheck(f, ps, eps=1e-6, atol=1e-5):
            raise AssertionError("gradgradcheck failed w.r.t. the parameters")


def assert_func_transforms(aggr: Aggregation, x: Tensor, index: Tensor, dim_size: int,
                           atol: float = 1e-5) -> None:
    """``torch.func`` works: ``grad`` w.r.t. the parameters equals
    ``backward()``'s, and ``jacfwd`` (forward mode, vmapped) equals
    ``jacrev``."""
    from torch.func import functional_call, grad, jacfwd, jacrev

    module = copy.deepcopy(aggr).eval()
    params = {n: p.detach() for n, p in module.named_parameters()}

    def loss(ps, x_):
        return functional_call(module, ps, (x_, index), {"dim_size": dim_size}).pow(2).sum()

    got = grad(loss)(params, x)
    module.zero_grad()
    module(x, index, dim_size=dim_size).pow(2).sum().backward()
    for name, p in module.named_parameters():
        _close(got[name], p.grad, atol, f"torch.func.grad vs backward() for '{name}'")

    def f(x_):
        return module(x_, index, dim_size=dim_size)

    _close(jacfwd(f)(x), jacrev(f)(x), atol, "jacfwd vs jacrev")


def assert_scriptable(module: torch.nn.Module, *args, atol: float = 1e-6, **kwargs):
    """``torch.jit.script`` compiles ``module``, gives the eager output and
    survives ``torch.jit.save``/``load``; returns the scripted module."""
    import io

    module.eval()
    scripted = torch.jit.script(module)
    expected = module(*args, **kwargs)
    _close(scripted(*args, **kwargs), expected, atol, "torch.jit.script vs eager")
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    _close(torch.jit.load(buffer)(*args, **kwargs), expected, atol, "saved and loaded script")
    return scripted


def assert_exportable(module: torch.nn.Module, args: tuple, kwargs: Optional[dict] = None,
                      atol: float = 1e-6, dynamic_shapes=None, check=()) -> object:
    """``torch.export.export`` traces ``module`` (eval mode) and the exported
    program gives the eager output, on ``args`` and on every further
    ``(args, kwargs)`` pair in ``check``; returns the ExportedProgram."""
    module.eval()
    kwargs = kwargs or {}
    program = torch.export.export(module, args, kwargs, dynamic_shapes=dynamic_shapes)
    for a, kw in ((args, kwargs),) + tuple(check):
        _close(program.module()(*a, **kw), module(*a, **kw), atol, "torch.export vs eager")
    return program


def assert_compiles(aggr: Aggregation, x: Tensor, index: Tensor, dim_size: int,
                    atol: float = 1e-5, backend: str = "aot_eager",
                    max_graph_breaks: Optional[int] = None) -> None:
    """``torch.compile`` (graph breaks allowed, at most ``max_graph_breaks``
    when given) gives the eager output and gradients. The default
    ``backend='aot_eager'`` checks tracing without generating kernels, which
    is much faster on small machines; pass ``'inductor'`` for the real thing."""
    aggr.eval()
    if max_graph_breaks is not None:
        import torch._dynamo as dynamo

        dynamo.reset()
        breaks = dynamo.explain(aggr)(x, index, dim_size=dim_size).graph_break_count
        if breaks > max_graph_breaks:
            raise AssertionError(f"{breaks} graph breaks under torch.compile "
                                 f"(at most {max_graph_breaks} expected)")
    compiled = torch.compile(aggr, dynamic=True, backend=backend)
    x = x.detach().requires_grad_(True)
    expected = aggr(x, index, dim_size=dim_size)
    (expected_grad,) = torch.autograd.grad(expected.sum(), x)
    out = compiled(x, index, dim_size=dim_size)
    _close(out, expected, atol, "torch.compile vs eager")
    (got_grad,) = torch.autograd.grad(out.sum(), x)
    _close(got_grad, expected_grad, atol, "torch.compile vs eager gradient")


def check_aggregator(make: Callable[[int], Aggregation], channels: int = 4,
                     permutation_invariant: Optional[bool] = None,
                     dtypes=(torch.float32, torch.float64), device=None) -> None:
    """Run every applicable assertion on a fixture with an empty segment,
    a degree-1 node and a high-degree node, in float32 and float64, on
    ``device``."""
    degrees = [3, 0, 1, 9, 2]
    for dtype in dtypes:
        aggr = make(channels).to(device=device, dtype=dtype)
        atol = 1e-5 if dtype == torch.float32 else 1e-10
        x, index, ptr = random_segments(degrees, channels, dtype, device=device)
        n = len(degrees)
        assert_batch_independent(aggr, x, index, n, atol)
        assert_index_ptr_agree(aggr, x, index, ptr, atol)
        assert_unsorted_equals_sorted(aggr, x, index, n, atol)
        assert_empty_and_isolated(aggr, channels, dtype=dtype, device=device)
        invariant = getattr(aggr, "permutation_invariant", permutation_invariant)
        if invariant:
            assert_permutation_invariant(aggr, x, index, n, atol * 10)
        elif invariant is False:
            assert_not_permutation_invariant(aggr, x, index, n)


class HostSyncs:
    """Counts the device-to-host synchronisations of the code run inside
    it (``with HostSyncs() as syncs: ...; syncs.count``).

    On CUDA, with ``torch.cuda.set_sync_debug_mode('warn')``, every
    synchronising CUDA call counts. Elsewhere the operations that would
    synchronise on a GPU are counted instead: reading a tensor's value on the
    host (``item``, ``int``, ``float``, ``bool``: ``aten._local_scalar_dense``),
    ``tolist``/``numpy``/copies to the CPU, and the operations whose output
    size depends on the data (``nonzero``, ``masked_select``, ``unique``,
    ``bincount``, boolean-mask indexing, ``repeat_interleave`` without
    ``output_size``). ``events`` lists what was counted.
    """

    _DATA_DEPENDENT = ("nonzero", "masked_select", "unique", "_unique", "unique_consecutive",
                       "unique_dim", "_unique2", "bincount", "_local_scalar_dense")

    def __init__(self, device="cpu") -> None:
        self.device = torch.device(device)
        self.events = []

    @property
    def count(self) -> int:
        return len(self.events)

    def __enter__(self) -> "HostSyncs":
        if self.device.type == "cuda":
            import warnings

            torch.cuda.synchronize()
            self._catch = warnings.catch_warnings(record=True)
            self._records = self._catch.__enter__()
            warnings.simplefilter("always")
            self._mode_before = torch.cuda.get_sync_debug_mode()
            torch.cuda.set_sync_debug_mode("warn")
            return self
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                name = func.overloadpacket.__name__
                if name in HostSyncs._DATA_DEPENDENT:
                    counter.events.append(name)
                elif name == "repeat_interleave" and kwargs.get("output_size") is None \
                        and func is torch.ops.aten.repeat_interleave.Tensor:
                    counter.events.append("repeat_interleave without output_size")
                elif name in ("index", "index_put", "index_put_") and any(
                        isinstance(i, Tensor) and i.dtype == torch.bool
                        for i in (args[1] if len(args) > 1 else []) or []):
                    counter.events.append(f"{name} with a boolean mask")
                return func(*args, **kwargs)

        self._mode = _Mode()
        self._patched = {}
        for method in ("tolist", "numpy"):
            original = getattr(Tensor, method)

            def patched(t, *a, _original=original, _name=method, **kw):
                counter.events.append(_name)
                return _original(t, *a, **kw)

            self._patched[method] = original
            setattr(Tensor, method, patched)
        self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.set_sync_debug_mode(self._mode_before)
            self._catch.__exit__(*exc)
            self.events.extend(str(w.message)[:120] for w in self._records
                               if "synchroniz" in str(w.message).lower())
            return
        self._mode.__exit__(*exc)
        for method, original in self._patched.items():
            setattr(Tensor, method, original)
