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


def test_check_device_and_launcher(monkeypatch):
    D.check_device(None)
    D.check_device("cpu")
    with pytest.raises(ValueError, match="device 'gpu0'"):
        D.check_device("gpu0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert D.under_launcher()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not D.under_launcher()


@pytest.mark.data("ogb")
def test_two_gloo_processes_agree_with_one(tmp_path, monkeypatch):
    """2 processes on 127.0.0.1 through the runner (the one slow test: it
    spawns): identical parameters on both ranks, and the gathered test
    metric at the selected epoch equals a one-process evaluation of the
    selected model."""
    import json

    from gnnagg.cli import main as cli
    from gnnagg.experiments import ogb
    from gnnagg.train.tasks import graph_property

    monkeypatch.setenv("GNNAGG_THREADS", "1")
    out = tmp_path / "ws2.json"
    argv = ["run", "ogb", "--dataset", "ogbg-molesol", "--model", "gin-virtual", "--aggr", "lcm",
            "--runs", "1", "--epochs", "2", "--batch-size", "8", "--num-layers", "2",
            "--hidden-channels", "16", "--subset", "30", "--world-size", "2",
            "--save-models", str(tmp_path / "models"), "--out", str(out)]
    assert cli(argv) == 0
    record = json.loads(out.read_text())["runs"][0]
    assert record["world_size"] == 2 and record["parameters_equal_across_ranks"]
    torch.set_num_threads(1)
    cfg = ogb.OGBConfig(dataset="ogbg-molesol", model="gin-virtual", aggr="lcm", runs=1,
                        epochs=2, batch_size=8, num_layers=2, hidden_channels=16, subset=30)
    data = ogb._prepare(cfg, ogb.validate(cfg), D.Context())
    model = ogb.build_graph_model(cfg, data.dataset.num_tasks)
    model.load_state_dict(torch.load(tmp_path / "models" / "seed-0.pt"))
    _, _, evaluate = graph_property(data.dataset, data.split, data.evaluator, eval_batch_size=7)
    with torch.no_grad():
        alone = evaluate(model.eval())
    assert alone["test_rmse"] == pytest.approx(record["best"]["test_rmse"], rel=1e-5)
    assert alone["valid_rmse"] == pytest.approx(record["best"]["valid_rmse"], rel=1e-5)
