import os

import pytest
import torch

from gnnagg import distributed as D


def test_launch_alone_and_bad_sizes(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = D.launch(lambda c: c, world_size=1)
    assert ctx.rank == 0 and not ctx.distributed and ctx.is_main
    with pytest.raises(ValueError, match="positive integer"):
        D.launch(lambda c: c, world_size=0)
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(ValueError, match="conflicts"):
        D.launch(lambda c: c, world_size=2)


def test_shards_cover_every_example_once():
    shards = [D.eval_shard(11, D.Context(rank=r, world_size=3)) for r in range(3)]
    assert sorted(torch.cat(shards).tolist()) == list(range(11))


@pytest.mark.skipif(not os.environ.get("GNNAGG_DATA"),
                    reason="GNNAGG_DATA is not set (needs the offline OGB copies)")
def test_two_gloo_processes_agree_with_one(tmp_path, monkeypatch):
    """2 processes on 127.0.0.1: identical parameters on both ranks, and the
    gathered test metric equals a one-process evaluation of the saved model."""
    from ogb.graphproppred import Evaluator

    from gnnagg.datasets.ogb import load_graph_dataset
    from gnnagg.experiments import ogb

    monkeypatch.setenv("GNNAGG_THREADS", "1")
    if not os.environ.get("GNNAGG_CACHE"):
        monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    cfg = ogb.OGBConfig(dataset="ogbg-molesol", model="gin-virtual", runs=1, epochs=2,
                        batch_size=8, num_layers=2, hidden_channels=16, subset=30,
                        world_size=2, checkpoint_dir=str(tmp_path / "ckpt"))
    result = ogb.run(cfg)
    run = result["runs"][0]
    assert run["world_size"] == 2 and run["parameters_equal_across_ranks"]
    torch.set_num_threads(1)
    dataset = load_graph_dataset("ogbg-molesol")
    model = ogb.build_graph_model(cfg, dataset.num_tasks)
    model.load_state_dict(torch.load(tmp_path / "ckpt" / "run-0.pt", weights_only=False)["model"])
    test_idx = ogb.split_indices(dataset, cfg.subset)["test"]
    alone = ogb.evaluate(model, dataset, test_idx, Evaluator("ogbg-molesol"), D.Context(),
                         batch_size=7, amp=False)
    assert alone == pytest.approx(run["history"][-1]["test"], rel=1e-5)
