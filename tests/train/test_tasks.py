"""``gnnagg.train.tasks.node_classification`` on hand-computed values: the
loss, the metrics per split, per-split graphs and auxiliary losses."""
import math

import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Data

from gnnagg.train.tasks import node_classification

# Four nodes; the model's logits are fixed, so every number is by hand.
LOGITS = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 3.0]])
Y = torch.tensor([0, 1, 1, 1])
MASKS = (torch.tensor([True, True, False, False]), torch.tensor([False, False, True, False]),
         torch.tensor([False, False, False, True]))


def data():
    return Data(x=torch.zeros(4, 1), edge_index=torch.tensor([[0, 1], [1, 0]]), y=Y)


@torch.no_grad()
def scores_of(evaluate, model):
    return evaluate(model)


class Fixed(torch.nn.Module):
    """Returns LOGITS (plus a learnable 0) and records the graphs it sees."""

    def __init__(self):
        super().__init__()
        self.zero = torch.nn.Parameter(torch.zeros(()))
        self.seen = []

    def forward(self, x, edge_index):
        self.seen.append(edge_index)
        return LOGITS + self.zero


def ce(logits, label):
    return math.log(sum(math.exp(v) for v in logits)) - logits[label]


def test_loss_and_metrics_by_hand():
    loss_fn, evaluate = node_classification(data(), MASKS, metrics=("acc", "macro_f1"))
    model = Fixed()
    expected = (ce([2.0, 0.0], 0) + ce([0.0, 1.0], 1)) / 2
    assert loss_fn(model, None).item() == pytest.approx(expected)
    scores = scores_of(evaluate, model)
    # val_* before test_*, in the order of ``metrics``
    assert list(scores) == ["val_loss", "val_acc", "val_macro_f1", "test_acc", "test_macro_f1"]
    assert scores["val_loss"] == pytest.approx(ce([1.0, 0.0], 1))
    assert scores["val_acc"] == 0.0 and scores["test_acc"] == 1.0


def test_nll_loss_on_log_probabilities_equals_cross_entropy_on_logits():
    model = Fixed()
    plain = node_classification(data(), MASKS)
    logp = node_classification(data(), MASKS, loss=F.nll_loss,
                               forward=lambda m, x, ei: F.log_softmax(m(x, ei), -1))
    assert logp[0](model, None).item() == pytest.approx(plain[0](model, None).item())
    assert scores_of(logp[1], model) == pytest.approx(scores_of(plain[1], model))


def test_each_split_is_predicted_on_its_graph():
    train_g, val_g, test_g = "train graph", "val graph", "test graph"
    model = Fixed()
    loss_fn, evaluate = node_classification(data(), MASKS, graphs=(train_g, val_g, test_g))
    loss_fn(model, None)
    scores_of(evaluate, model)
    assert model.seen == [train_g, val_g, test_g]
    model.seen.clear()
    # transductive: the test graph is the validation graph, predicted once
    _, evaluate = node_classification(data(), MASKS, graphs=(train_g, val_g, val_g))
    scores_of(evaluate, model)
    assert model.seen == [val_g]


def test_callable_graphs_are_drawn_at_every_step_and_evaluation():
    """Sampled graphs: the training graph drawn anew at each step, the
    evaluation graphs at each evaluation, each from its own function."""
    draws = iter(["sample 1", "sample 2"])
    model = Fixed()
    loss_fn, evaluate = node_classification(data(), MASKS,
                                            graphs=(lambda: next(draws), "val g", "test g"))
    loss_fn(model, None)
    scores_of(evaluate, model)
    loss_fn(model, None)
    assert model.seen == ["sample 1", "val g", "test g", "sample 2"]
    model.seen.clear()
    evals = iter(["val 1", "test 1", "val 2", "test 2"])
    draw = lambda: next(evals)  # noqa: E731
    _, evaluate = node_classification(data(), MASKS, graphs=("train g", draw, lambda: draw()))
    scores_of(evaluate, model)
    scores_of(evaluate, model)
    assert model.seen == ["val 1", "test 1", "val 2", "test 2"]


def test_auxiliary_loss_is_added_in_training_only_and_labels_can_be_given():
    model = Fixed()

    def forward(m, x, ei):
        return m(x, ei), torch.tensor(0.25)

    flipped = 1 - Y
    loss_fn, evaluate = node_classification(data(), MASKS, forward=forward, y=flipped)
    expected = (ce([2.0, 0.0], 1) + ce([0.0, 1.0], 0)) / 2 + 0.25
    assert loss_fn(model, None).item() == pytest.approx(expected)
    scores = scores_of(evaluate, model)
    assert scores["val_loss"] == pytest.approx(ce([1.0, 0.0], 0))
    assert scores["val_acc"] == 1.0 and scores["test_acc"] == 0.0


class Texts:
    """Stands in for gnnagg.text.LabelledTexts: ``inputs(idx)`` and ``y``."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def inputs(self, idx):
        return (self.x[idx],)


def test_sentence_prediction_weights_batches_and_scores():
    from gnnagg.train.tasks import sentence_prediction

    train = Texts(torch.eye(4)[:, :2] * 3, torch.tensor([0, 1, 1, 1]))  # logits = features
    dev = Texts(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([1, 1]))
    batches, loss_fn, evaluate = sentence_prediction(
        train, {"val": train, "dev": dev}, ["accuracy", "f1"], num_outputs=2,
        class_weights=True, batch_size=3, seed=0)
    assert [len(b) for b in batches] == [3, 1]
    model = torch.nn.Identity()
    idx = torch.arange(4)
    loss, n = loss_fn(model, idx)
    weight = torch.tensor([4 / (2 * 1), 4 / (2 * 3)])  # inverse class frequency
    assert n == 4 and loss.item() == pytest.approx(
        F.cross_entropy(train.x, train.y, weight=weight).item())
    scores = scores_of(evaluate, model)
    assert list(scores) == ["val_accuracy", "val_f1", "dev_accuracy", "dev_f1"]
    # rows 2 and 3 of train have logits (0, 0): argmax 0, wrong
    assert scores["val_accuracy"] == 0.5 and scores["dev_accuracy"] == 0.5


def test_sentence_prediction_regression():
    from gnnagg.train.tasks import sentence_prediction

    train = Texts(torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, 3.0]))
    _, loss_fn, evaluate = sentence_prediction(train, {"val": train}, ["pearson"], 1,
                                               regression=True)
    loss, _ = loss_fn(torch.nn.Identity(), torch.arange(2))
    assert loss.item() == pytest.approx((0 + 1) / 2)
    assert scores_of(evaluate, torch.nn.Identity())["val_pearson"] == pytest.approx(1.0)


def test_node_property_nll_and_evaluator_on_predicted_classes():
    from gnnagg.train.tasks import node_property

    class Evaluator:  # OGB's contract: {'y_true', 'y_pred'} columns -> {metric}
        eval_metric = "acc"

        def eval(self, d):
            assert d["y_true"].shape == d["y_pred"].shape and d["y_pred"].size(1) == 1
            return {"acc": float((d["y_true"] == d["y_pred"]).float().mean())}

    split = {"train": torch.tensor([0, 1]), "valid": torch.tensor([2]), "test": torch.tensor([3])}
    loss_fn, evaluate = node_property(torch.zeros(4, 1), torch.zeros(2, 0, dtype=torch.long), Y,
                                      split, Evaluator())
    model = lambda x, ei: F.log_softmax(LOGITS, -1)  # noqa: E731
    expected = (ce([2.0, 0.0], 0) + ce([0.0, 1.0], 1)) / 2
    assert loss_fn(model, None).item() == pytest.approx(expected)
    assert evaluate(model) == {"valid_acc": 0.0, "test_acc": 1.0}
