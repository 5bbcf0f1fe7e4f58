"""Why the GCN-style model is near chance with ``mean``/``max`` in the sweep.

:class:`gnnagg.models.GCN` keeps GCN's symmetric normalisation and replaces
only the sum over neighbours, so with ``mean`` or ``max`` its messages are
about a node degree smaller than with ``sum``. This script trains that
model on Cora (hidden 64, Adam lr 0.01, 200 epochs, the sweep's node
budget without early stopping) with and without weight decay and prints,
per aggregator, the mean absolute gradient of the first layer's weight and
the L2 term ``weight_decay * |w|`` at epoch 5, the final training loss and
the test accuracy at the epoch of best validation accuracy::

    GNNAGG_DATA=../shared/data python experiments/sweep/gcn_weight_decay.py
"""
import argparse

import torch
import torch.nn.functional as F

from gnnagg.datasets.citation import load_citation
from gnnagg.models import GCN


def run(data, aggr: str, weight_decay: float, epochs: int, seed: int) -> dict:
    torch.manual_seed(seed)
    model = GCN(data.num_features, 64, int(data.y.max()) + 1, aggr=aggr)
    opt = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=weight_decay)
    best_val, test_at_best, grad, decay = -1.0, 0.0, 0.0, 0.0
    for epoch in range(epochs):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
        loss.backward()
        if epoch == 5:
            w = model.convs[0].lin.weight
            grad = w.grad.abs().mean().item()
            decay = weight_decay * w.abs().mean().item()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        val = (pred[data.val_mask] == data.y[data.val_mask]).float().mean().item()
        if val > best_val:
            best_val = val
            test_at_best = (pred[data.test_mask] == data.y[data.test_mask]).float().mean().item()
    return dict(grad=grad, decay=decay, loss=loss.item(), val=best_val, test=test_at_best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Cora")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load_citation(args.dataset)
    print(f"{args.dataset}: feature rows sum to {data.x.sum(1).mean():.3f} on average")
    print("| aggr | weight decay | grad at epoch 5 | weight decay x w | final loss | "
          "test acc at best val |")
    print("|---|---|---|---|---|---|")
    for aggr in ("sum", "mean", "max"):
        for wd in (5e-4, 0.0):
            r = run(data, aggr, wd, args.epochs, args.seed)
            print(f"| {aggr} | {wd:g} | {r['grad']:.2e} | {r['decay']:.2e} | {r['loss']:.3f} | "
                  f"{100 * r['test']:.1f}% |")


if __name__ == "__main__":
    main()
