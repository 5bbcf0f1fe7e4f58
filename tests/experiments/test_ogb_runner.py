import dataclasses
import os

import pytest
import torch

from gnnagg.datasets.store import MissingDataError

pytestmark = [pytest.mark.skipif(not os.environ.get("GNNAGG_DATA"),
                                 reason="GNNAGG_DATA is not set (needs the offline OGB copies)"),
              pytest.mark.usefixtures("one_thread")]

TINY = dict(dataset="ogbg-molesol", model="gin", runs=1, epochs=2, batch_size=8,
            num_layers=2, hidden_channels=16, subset=24)


@pytest.fixture(scope="module")
def molesol(tmp_path_factory):
    """The staged molesol set in a cache of its own (GNNAGG_CACHE when set,
    so repeated test sessions reuse the processed files)."""
    old = os.environ.get("GNNAGG_CACHE")
    if not old:
        os.environ["GNNAGG_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    from gnnagg.datasets.ogb import load_graph_dataset

    yield load_graph_dataset("ogbg-molesol")
    if not old:
        del os.environ["GNNAGG_CACHE"]


def config(**kwargs):
    from gnnagg.experiments.ogb import OGBConfig

    return OGBConfig(**{**TINY, **kwargs})


def test_fast_loader_equals_pyg_loader(molesol):
    from torch_geometric.loader import DataLoader

    from gnnagg.datasets.ogb import FastGraphLoader

    ids = torch.tensor([5, 0, 17, 3, 900, 11])
    fast = list(FastGraphLoader(molesol, ids, batch_size=4))
    ref = list(DataLoader(molesol[ids], batch_size=4))
    assert len(fast) == len(ref) == 2
    for a, b in zip(fast, ref):
        assert a.num_graphs == b.num_graphs
        for key in ("x", "edge_index", "edge_attr", "y", "batch", "ptr"):
            assert torch.equal(a[key], b[key]), key


def test_smoke_runs_and_summarises(molesol, tmp_path):
    from gnnagg.cli import main as cli_main
    import json

    out = tmp_path / "esol.json"
    cli_main(["run", "ogb", "--dataset", "ogbg-molesol", "--model", "gin-virtual",
              "--aggr", "lcm", "--runs", "2", "--epochs", "2", "--batch-size", "8",
              "--num-layers", "2", "--hidden-channels", "16", "--subset", "24",
              "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["metric"] == "rmse"
    assert result["summary"]["test"]["n"] == 2
    for r in result["runs"]:
        assert len(r["history"]) == 2 and r["best"]["epoch"] in (0, 1)
        best = min(r["history"], key=lambda h: h["valid"])  # rmse: lower is better
        assert r["best"]["test"] == best["test"]
    assert result["runs"][0]["seed"] == 0 and result["runs"][1]["seed"] == 1
    assert "| ogbg-molesol | gin-virtual | lcm" in result["table"]


def test_resume_after_interruption_equals_uninterrupted(molesol, tmp_path, monkeypatch):
    from gnnagg.experiments import ogb

    whole = ogb.run(config(epochs=3, checkpoint_dir=str(tmp_path / "a")))
    calls = {"n": 0}
    real = ogb.train_epoch

    def dies_in_third_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    cfg = config(epochs=3, checkpoint_dir=str(tmp_path / "b"))
    monkeypatch.setattr(ogb, "train_epoch", dies_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        ogb.run(cfg)
    saved = torch.load(tmp_path / "b" / "run-0.pt", weights_only=False)
    assert saved["epoch"] == 1 and len(saved["history"]) == 2
    assert not list((tmp_path / "b").glob("*.partial"))
    calls["n"] = -100  # no more interruptions
    resumed = ogb.run(cfg)
    assert calls["n"] == -99  # only the missing epoch was trained
    strip = lambda hs: [{k: v for k, v in h.items() if not k.endswith("seconds")} for h in hs]
    assert strip(resumed["runs"][0]["history"]) == strip(whole["runs"][0]["history"])
    a = torch.load(tmp_path / "a" / "run-0.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "run-0.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_from_other_options_is_refused(molesol, tmp_path):
    from gnnagg.experiments import ogb

    ogb.run(config(epochs=1, checkpoint_dir=str(tmp_path)))
    ogb.run(config(epochs=2, checkpoint_dir=str(tmp_path)))  # more epochs: fine
    with pytest.raises(ValueError, match="other options"):
        ogb.run(config(epochs=2, lr=0.01, checkpoint_dir=str(tmp_path)))


def test_atomic_save_keeps_old_checkpoint(tmp_path, monkeypatch):
    from gnnagg.experiments import ogb

    path = tmp_path / "run-0.pt"
    ogb.save_atomic({"epoch": 1}, path)

    def broken_save(obj, f):
        open(f, "wb").write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        ogb.save_atomic({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path)["epoch"] == 1


def test_bad_options(molesol):
    from gnnagg.datasets.ogb import load_graph_dataset
    from gnnagg.experiments import ogb

    with pytest.raises(ValueError, match="unknown OGB data set"):
        ogb.run(config(dataset="ogbx-foo"))
    with pytest.raises(ValueError, match="starting with 'ogbg-'"):
        load_graph_dataset("molhiv")
    with pytest.raises(ValueError, match="unknown model 'sage'"):
        ogb.run(config(model="sage"))
    with pytest.raises(ValueError, match="runs and epochs"):
        ogb.run(config(epochs=0))


def test_missing_data_names_files(tmp_path, monkeypatch):
    import ogb.graphproppred.dataset_pyg as pyg_ds

    from gnnagg.datasets.ogb import load_graph_dataset

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(pyg_ds, "decide_download", offline)
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MissingDataError) as info:
        load_graph_dataset("ogbg-molfreesolv")
    message = str(info.value)
    assert "ogb/ogbg_molfreesolv/raw/node-feat.csv.gz" in message
    assert str(tmp_path / "empty") in message


def test_node_task_full_batch_on_a_stand_in(monkeypatch):
    """ogbn sets are not offline: the node path runs on a tiny stand-in with
    ogbn-arxiv's name (and Evaluator)."""
    from torch_geometric.data import Data

    from gnnagg.experiments import ogb

    class StandIn:
        def __init__(self):
            gen = torch.Generator().manual_seed(0)
            y = torch.arange(30) % 3
            x = torch.nn.functional.one_hot(y, 3).float() + 0.1 * torch.randn(30, 3, generator=gen)
            ring = torch.arange(30)
            self.data = Data(x=x, edge_index=torch.stack([ring, (ring + 1) % 30]),
                             y=y.view(-1, 1))

        def __getitem__(self, i):
            return self.data

        def get_idx_split(self):
            p = torch.randperm(30, generator=torch.Generator().manual_seed(1))
            return {"train": p[:18], "valid": p[18:24], "test": p[24:]}

    monkeypatch.setattr(ogb, "_loaders", lambda: {"ogbn": lambda name: StandIn()})
    result = ogb.run(ogb.OGBConfig(dataset="ogbn-arxiv", model="sage", aggr="mean", runs=2,
                                   epochs=30, lr=0.05, num_layers=2, hidden_channels=16))
    assert result["metric"] == "acc" and result["summary"]["test"]["n"] == 2
    assert result["summary"]["valid"]["mean"] > 0.6  # separable features: learnt
    with pytest.raises(ValueError, match="world-size 1"):
        ogb.run(ogb.OGBConfig(dataset="ogbn-arxiv", model="gcn", world_size=2, runs=1,
                              epochs=1))
