"""DistributedDataParallel with gnnagg's LCM under DDP's defaults
(``find_unused_parameters=False``), as a user's own training script runs it:
two CPU processes (gloo), two steps on batches without isolated nodes, where
the learned identity of empty neighbourhoods is not needed. DDP requires a
gradient for every parameter in every step; PyG's LCM has no identity and
trains under the same script.

The workers free their DDP model before the process group
(:func:`gnnagg.distributed.release_process_group`; see there for the
PyTorch deadlock this avoids), and the test gives them a deadline, so
that a hang fails here instead of stalling the suite."""
import os
import time
from datetime import timedelta

import pytest
import torch

from gnnagg.aggr import LCMAggregation


def _batch(rank: int, step: int):
    g = torch.Generator().manual_seed(10 * rank + step)
    num = 6
    # A ring (every node has a neighbour) plus random extra edges.
    src = torch.cat([torch.arange(num), torch.randint(num, (4,), generator=g)])
    dst = torch.cat([(torch.arange(num) + 1) % num, torch.randint(num, (4,), generator=g)])
    return torch.randn(num, 4, generator=g), torch.stack([src, dst])


def _train(rank: int, out_dir: str) -> None:
    from torch.nn.parallel import DistributedDataParallel
    from torch_geometric.nn import SAGEConv

    torch.manual_seed(0)
    model = SAGEConv(4, 3, aggr=LCMAggregation(4, 4))
    ddp = DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1)
    for step in range(2):
        x, edge_index = _batch(rank, step)
        opt.zero_grad()
        ddp(x, edge_index).pow(2).mean().backward()
        opt.step()
    torch.save(model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))


def _worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    from gnnagg.distributed import release_process_group

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size, timeout=timedelta(seconds=60))
    try:
        _train(rank, out_dir)  # the DDP model lives and dies in this call
    finally:
        release_process_group()


def _run_workers(args: tuple, nprocs: int, deadline_s: float) -> None:
    # spawn, not fork: a fork after torch.compile (or any thread) started in
    # this process can deadlock the children.
    ctx = torch.multiprocessing.start_processes(_worker, args=args, nprocs=nprocs,
                                                join=False, start_method="spawn")
    start = time.monotonic()
    while not ctx.join(timeout=1):  # raises if a worker failed
        if time.monotonic() - start > deadline_s:
            for proc in ctx.processes:
                proc.kill()
            pytest.fail(f"the {nprocs} DDP workers did not finish in {deadline_s:.0f} s")


@pytest.mark.slow  # two fresh processes import torch and PyG
def test_ddp_trains_lcm_with_default_settings(tmp_path):
    torch.manual_seed(0)
    initial = _initial_state()
    _run_workers((2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, deadline_s=120)
    states = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for key in initial:
        # Gradients were averaged across the processes: identical replicas.
        torch.testing.assert_close(states[0][key], states[1][key])
    assert not torch.equal(states[0]["aggr_module.gru_cell.weight_hh"],
                           initial["aggr_module.gru_cell.weight_hh"])
    # No empty neighbourhood: the identity's gradient was exactly zero.
    assert torch.equal(states[0]["aggr_module.identity"], initial["aggr_module.identity"])


def _initial_state():
    from torch_geometric.nn import SAGEConv

    torch.manual_seed(0)
    return SAGEConv(4, 3, aggr=LCMAggregation(4, 4)).state_dict()
