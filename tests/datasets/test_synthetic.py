import pytest
import torch

from gnnagg.datasets.synthetic import (TASKS, SyntheticSetDataset, generate_sets, get_task,
                                       int_to_bits, set_to_graph)


def reference(task, values):
    """The set functions, computed directly in Python."""
    if task == "second_min":
        return sorted(values)[1]
    if task == "max":
        return max(values)
    if task == "parity":
        return sum(values) % 2
    if task == "majority":
        return int(2 * sum(v % 2 for v in values) > len(values))
    raise AssertionError(task)


def split(batch):
    ends = torch.cumsum(batch.sizes, 0).tolist()
    starts = [0] + ends[:-1]
    return [batch.values[s:e].tolist() for s, e in zip(starts, ends)]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_labels_match_python(task):
    batch = generate_sets(task, 300, sizes=(2, 9), bits=3, seed=7)
    sets = split(batch)
    assert len(sets) == batch.num_sets == 300
    assert [reference(task, s) for s in sets] == batch.y.tolist()
    assert all(2 <= len(s) <= 9 for s in sets)
    assert batch.index.tolist() == [i for i, s in enumerate(sets) for _ in s]
    assert int(batch.y.max()) < get_task(task).num_classes(3)


def test_hand_computed_examples():
    values, index = torch.tensor([3, 3, 7, 5, 1, 4, 2]), torch.tensor([0, 0, 0, 1, 1, 2, 2])
    expected = {"second_min": [3, 5, 4], "max": [7, 5, 4], "parity": [1, 0, 0],
                "majority": [1, 1, 0]}
    for task, y in expected.items():
        assert TASKS[task].label(values, index, 3, 3).tolist() == y, task


def test_deterministic_for_a_seed():
    a = generate_sets("second_min", 50, seed=3)
    b = generate_sets("second_min", 50, seed=3)
    c = generate_sets("second_min", 50, seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a[:4], b[:4]))
    assert not torch.equal(a.sizes, c.sizes) or not torch.equal(a.values, c.values)
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    generate_sets("max", 10, seed=1)
    assert torch.equal(torch.rand(1), before)  # the global RNG is untouched


def test_fixed_size_and_select():
    batch = generate_sets("parity", 20, sizes=5, bits=4, seed=0)
    assert batch.sizes.tolist() == [5] * 20
    sub = batch.select(torch.tensor([3, 1]))
    sets = split(batch)
    assert split(sub) == [sets[3], sets[1]]
    assert sub.y.tolist() == [batch.y[3].item(), batch.y[1].item()]
    assert sub.index.tolist() == [0] * 5 + [1] * 5


def test_bits():
    assert int_to_bits(torch.tensor([5, 0]), 4).tolist() == [[0, 1, 0, 1], [0, 0, 0, 0]]


def test_graph_form_matches_segments():
    ds = SyntheticSetDataset("second_min", 6, sizes=(2, 4), bits=3, seed=2)
    batch = generate_sets("second_min", 6, sizes=(2, 4), bits=3, seed=2)
    assert len(ds) == 6 and ds.num_classes == 8
    for i, values in enumerate(split(batch)):
        g = ds[i]
        n = len(values)
        assert g.num_nodes == n + 1 and g.value[:n].tolist() == values
        assert g.edge_index.tolist() == [list(range(n)), [n] * n]
        assert g.is_readout.tolist() == [False] * n + [True]
        assert g.y.item() == batch.y[i].item() == sorted(values)[1]
        assert torch.equal(g.x[:n], int_to_bits(torch.tensor(values), 3))
    # Sum over the edges into the readout node recovers the bit counts.
    from torch_geometric.loader import DataLoader
    from torch_geometric.nn import SimpleConv

    data = next(iter(DataLoader(ds, batch_size=6)))
    out = SimpleConv(aggr="sum")(data.x, data.edge_index)[data.is_readout]
    assert torch.equal(out, torch.stack([int_to_bits(torch.tensor(v), 3).sum(0) for v in split(batch)]))
    assert set_to_graph(torch.tensor([1]), 1, 3).edge_index.tolist() == [[0], [1]]


@pytest.mark.parametrize("kwargs, error", [
    (dict(task="nope", num_sets=3), ValueError),
    (dict(task=3, num_sets=3), TypeError),
    (dict(task="second_min", num_sets=3, sizes=(1, 4)), ValueError),
    (dict(task="max", num_sets=3, sizes=(5, 2)), ValueError),
    (dict(task="max", num_sets=3, sizes="big"), TypeError),
    (dict(task="max", num_sets=-1), ValueError),
    (dict(task="max", num_sets=3, bits=0), ValueError),
])
def test_bad_input(kwargs, error):
    with pytest.raises(error):
        generate_sets(**kwargs)
