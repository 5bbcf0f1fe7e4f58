import pytest
import torch


@pytest.fixture
def three_sentences():
    """``make(dtype)``: a padded batch of three sentences of 4, 2 and 1
    tokens and its mask; padding holds huge values so a padding token
    leaking into any result shows."""
    def make(dtype=torch.float32):
        x = torch.tensor([
            [[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]],
            [[0.0, 1.0], [0.1, 1.0], [1e6, 1e6], [1e6, -1e6]],
            [[2.0, 2.0], [1e6, 1e6], [1e6, 1e6], [1e6, 1e6]],
        ], dtype=dtype)
        mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
        return x, mask
    return make
