"""LabelledTexts: one split's encoded texts (or pairs) and labels."""
import numpy as np
import pytest
import torch

from gnnagg.text import EncodedTexts, LabelledTexts


def texts(lengths, offset=0.0):
    """Text i's token r has the state [i + offset, r] (2 channels)."""
    rows = [[i + offset, r] for i, n in enumerate(lengths) for r in range(n)]
    ptr = torch.tensor([0] + list(np.cumsum(lengths)), dtype=torch.long)
    return EncodedTexts(torch.tensor(rows, dtype=torch.float16), ptr)


def test_subset_inputs_and_split():
    data = LabelledTexts(texts([3, 1, 2, 2, 1]), texts([1, 2, 1, 1, 3], offset=10.0),
                         torch.tensor([0, 1, 1, 0, 1]))
    assert len(data) == 5 and data.pair
    x, mask, xb, maskb = data.inputs([2, 0])
    assert x.dtype == torch.float32 and x.shape == (2, 3, 2) and xb.shape == (2, 1, 2)
    assert x[:, 0, 0].tolist() == [2.0, 0.0] and xb[:, 0, 0].tolist() == [12.0, 10.0]
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    sub = data.subset([4, 1])
    assert sub.y.tolist() == [1, 1] and sub.b.lengths().tolist() == [3, 2]
    # numpy's default_rng(0).permutation(5) is [4, 2, 1, 3, 0]: rows 2 and 4 held out
    rest, held = data.split(0.4)
    assert held.a.states[held.a.ptr[:-1], 0].tolist() == [2.0, 4.0]
    assert rest.a.states[rest.a.ptr[:-1], 0].tolist() == [0.0, 1.0, 3.0]
    single = LabelledTexts(texts([1, 2]), None, torch.tensor([0.5, 1.5]))
    assert not single.pair and len(single.inputs([1])) == 2


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="3 texts, 2 second texts and 3 labels"):
        LabelledTexts(texts([1, 1, 1]), texts([1, 1]), torch.zeros(3))
    with pytest.raises(ValueError, match="2 texts, no second texts and 1 labels"):
        LabelledTexts(texts([1, 1]), None, torch.zeros(1))
    data = LabelledTexts(texts([1]), None, torch.zeros(1))
    with pytest.raises(ValueError, match="1 examples are too few"):
        data.split(0.5)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\)"):
        data.split(1.0)
