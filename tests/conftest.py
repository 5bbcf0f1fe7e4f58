import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny models: extra threads only add synchronisation (and CI machines
    are shared). Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
