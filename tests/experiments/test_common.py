"""``run_series`` and ``over_runs``: what each runner's resumable loop and
summary over seeds rely on."""
import json
import math

import pytest

from gnnagg.experiments.common import over_runs, run_series
from gnnagg.train import RunStore


def test_run_series_trains_only_missing_runs_and_writes_partial_summaries(tmp_path):
    out = tmp_path / "r.json"
    trained, seen = [], []

    def train(key, checkpoint):
        trained.append(key)
        return {"key": key, "score": float(len(trained)), "pair": (1, 2)}

    def partial(records):
        return {"summary": over_runs(records, ["score"])}

    store = RunStore(str(out), "test", {"a": 1})
    first = run_series(store, ["r0", "r1"], train, partial=partial,
                       on_record=lambda key, record, new: seen.append((key, new)))
    assert trained == ["r0", "r1"] and seen == [("r0", True), ("r1", True)]
    assert first[0]["pair"] == (1, 2)  # as train returned it
    written = json.loads(out.read_text())
    assert written["summary"]["score"] == {"mean": 1.5, "std": pytest.approx(math.sqrt(0.5)),
                                           "n": 2}
    assert not written["complete"]

    seen.clear()
    store = RunStore(str(out), "test", {"a": 1})
    again = run_series(store, ["r0", "r1", "r2"], train, stored=True,
                       on_record=lambda key, record, new: seen.append((key, new)))
    assert trained == ["r0", "r1", "r2"]  # r0 and r1 were not redone
    assert seen == [("r0", False), ("r1", False), ("r2", True)]
    assert again[2] == {"key": "r2", "score": 3.0, "pair": [1, 2]}  # as stored (JSON)
    assert again[:2] == [store.get("r0"), store.get("r1")]


def test_over_runs_with_a_value_function():
    records = [{"best": {"acc": 0.5}}, {"best": {"acc": 1.0}}]
    summary = over_runs(records, ["acc"], lambda r, k: r["best"][k])
    assert summary == {"acc": {"mean": 0.75, "std": pytest.approx(math.sqrt(0.125)), "n": 2}}
    assert over_runs([], ["acc"])["acc"]["n"] == 0
