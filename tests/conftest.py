import signal

import pytest
import torch


def pytest_configure(config):
    # Tests never read or write the user's real cache (~/.cache/gnnagg):
    # every session gets a fresh one unless GNNAGG_CACHE names one.
    import os
    import tempfile

    if not os.environ.get("GNNAGG_CACHE"):
        os.environ["GNNAGG_CACHE"] = tempfile.mkdtemp(prefix="gnnagg-test-cache-")
    os.environ.setdefault("GNNAGG_QUIET", "1")
    config.addinivalue_line(
        "markers", "data(*folders): needs these folders of the offline data set copies "
        "(GNNAGG_DATA); skipped where they are missing, except under CI=true")


def pytest_runtest_setup(item):
    """``@pytest.mark.data("ogb", "planetoid")``: a fresh machine without the
    offline copies skips these tests and says where it looked; CI, which has
    them, runs them anyway, so that a missing folder fails there instead of
    passing unnoticed."""
    import os

    from gnnagg.datasets import store

    for mark in item.iter_markers("data"):
        missing = [f for f in mark.args if store.find(f) is None]
        if missing and os.environ.get("CI", "").lower() not in ("1", "true"):
            looked = ", ".join(p for f in missing for p in store.places_looked(f))
            pytest.skip(f"offline data {', '.join(missing)} not found (looked in {looked})")


#: Every device the op and aggregator tests run on: the CPU always, CUDA
#: when present (``GNNAGG_TEST_DEVICES=cpu`` restricts the list).
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _devices():
    import os

    wanted = os.environ.get("GNNAGG_TEST_DEVICES")
    return [d for d in DEVICES if not wanted or d in wanted.split(",")]


@pytest.fixture(params=_devices())
def device(request):
    """Each available device in turn (``torch.device``); a test that takes
    it runs once per device and builds its tensors and modules there."""
    return torch.device(request.param)


@pytest.fixture
def one_thread():
    """Tiny models: extra threads only add synchronisation (and CI machines
    are shared). Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def sigint_at_epoch(monkeypatch):
    """``arm(n)``: deliver a real SIGINT to this process when the training
    engine starts its n-th epoch (counted over all runs), as Ctrl-C would.
    Epoch checkpoints are written after every epoch while armed. Run the
    runner through ``gnnagg.cli.main``, which turns the interrupt into exit
    code 130; later epochs are not interrupted again."""
    from gnnagg.train import engine

    monkeypatch.setenv("GNNAGG_CHECKPOINT_SECONDS", "0")
    seen = {"epochs": 0}
    original = engine._set_epoch

    def arm(n: int):
        def patched(data, epoch):
            seen["epochs"] += 1
            if seen["epochs"] == n:
                signal.raise_signal(signal.SIGINT)
            original(data, epoch)

        monkeypatch.setattr(engine, "_set_epoch", patched)
        return seen

    return arm
