import os
from pathlib import Path

import numpy as np
import pytest

from gnnagg.datasets import MissingDataError
from gnnagg.datasets.glue import GLUE_TASKS, glue_task, load_glue, parse_glue_tsv
from gnnagg.datasets.stress import CONTEXTS, DISTRACTORS, NEGATIONS, make_stress, stress_splits

TINY = {
    "SST-2": "sentence\tlabel\nit 's \"good\" .\t1\nbad film \t0\n",
    "CoLA": "gj04\t1\t\tThe cat sat.\ngj04\t0\t*\tCat the sat.\n",
    "RTE": "index\tsentence1\tsentence2\tlabel\n0\tA man sleeps.\tSomeone sleeps.\tentailment\n"
           "1\tA dog.\tA cat.\tnot_entailment\n",
    "MRPC": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe left.\tHe went.\n"
            "0\t3\t4\tRain.\tSun.\n",
    "STS-B": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
             "0\tx\tx\tx\tx\tx\tx\tA cat.\tA cat!\t5.000\n1\tx\tx\tx\tx\tx\tx\tA.\tB.\t0.4\n",
}


@pytest.fixture
def tiny_glue(tmp_path, monkeypatch):
    for folder, text in TINY.items():
        (tmp_path / "glue" / folder).mkdir(parents=True)
        (tmp_path / "glue" / folder / "train.tsv").write_text(text)
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_reads_every_glue_format(tiny_glue):
    sst = load_glue("sst2")
    assert sst.text_a == ["it 's \"good\" .", "bad film"] and sst.text_b is None
    assert sst.labels.tolist() == [1, 0] and sst.labels.dtype == np.int64
    cola = load_glue("CoLA")
    assert cola.text_a == ["The cat sat.", "Cat the sat."] and cola.labels.tolist() == [1, 0]
    rte = load_glue("rte")
    assert rte.text_b == ["Someone sleeps.", "A cat."] and rte.labels.tolist() == [0, 1]
    mrpc = load_glue("mrpc")
    assert mrpc.text_a == ["He left.", "Rain."] and mrpc.labels.tolist() == [1, 0]
    sts = load_glue("STS-B")
    assert sts.text_b == ["A cat!", "B."] and np.allclose(sts.labels, [5.0, 0.4])
    assert sts.labels.dtype == np.float32


def test_errors_name_the_problem(tiny_glue):
    with pytest.raises(MissingDataError, match="glue/SST-2/dev.tsv"):
        load_glue("sst2", "dev")
    with pytest.raises(ValueError, match="unknown GLUE task"):
        load_glue("qqq")
    with pytest.raises(ValueError, match="split must be"):
        load_glue("sst2", "test")
    with pytest.raises(ValueError, match="line 2: 1 tab-separated"):
        parse_glue_tsv("sentence\tlabel\nno label here\n", glue_task("sst2"))
    with pytest.raises(ValueError, match="bad label"):
        parse_glue_tsv("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", glue_task("rte"))
    with pytest.raises(ValueError, match="no column 'sentence'"):
        parse_glue_tsv("text\tlabel\na\t1\n", glue_task("sst2"))


def test_subsample_is_deterministic(tiny_glue):
    sst = load_glue("sst2")
    assert sst.subsample(None) is sst
    one = sst.subsample(1, seed=3)
    assert len(one) == 1 and one.text_a == sst.subsample(1, seed=3).text_a


@pytest.mark.skipif(not os.environ.get("GNNAGG_DATA"), reason="GNNAGG_DATA is not set")
def test_offline_glue_row_counts():
    if not (Path(os.environ["GNNAGG_DATA"].split(os.pathsep)[0]) / "glue" / "RTE").is_dir():
        pytest.skip("no glue/ folder in GNNAGG_DATA")
    sizes = {t: (len(load_glue(t, "train")), len(load_glue(t, "dev"))) for t in ("sst2", "cola", "rte")}
    assert sizes == {"sst2": (67349, 872), "cola": (8551, 1043), "rte": (2490, 277)}


@pytest.mark.parametrize("ratio", [0.0, 0.2, 0.5, 0.9])
def test_stress_labels_and_layout(ratio):
    split = make_stress(200, ratio, length=60, seed=1)
    assert len(split) == 200 and split.labels.sum() == 100  # balanced
    negations = set(NEGATIONS)
    for text, label in zip(split.texts, split.labels):
        words = text.split()
        assert len(words) == 60
        has_negation = any(w in negations for w in words)
        assert has_negation == (label == 0)
        assert sum(w in negations for w in words) <= 1
    assert not negations & set(DISTRACTORS)


def test_stress_is_deterministic():
    a_train, a_test = stress_splits(0.8, 30, 10, length=32, seed=4)
    b_train, b_test = stress_splits(0.8, 30, 10, length=32, seed=4)
    assert a_train.texts == b_train.texts and a_test.texts == b_test.texts
    assert np.array_equal(a_train.labels, b_train.labels)
    c_train, _ = stress_splits(0.8, 30, 10, length=32, seed=5)
    assert c_train.texts != a_train.texts
    assert a_train.texts != a_test.texts[:10]


def test_stress_signal_block_size():
    # at ratio 0.5 of 20 words, 10 signal words sit contiguously
    split = make_stress(50, 0.5, length=20, seed=0)
    for text, label in zip(split.texts, split.labels):
        words = text.split()
        if label == 0:
            neg = next(i for i, w in enumerate(words) if w in NEGATIONS)
            assert words[neg - 3:neg] in [list(c) for c in CONTEXTS]


def test_stress_bad_arguments():
    with pytest.raises(ValueError, match="ratio"):
        make_stress(4, 1.0)
    with pytest.raises(ValueError, match="signal words"):
        make_stress(4, 0.9, length=20)
    with pytest.raises(ValueError, match="n must"):
        make_stress(-1, 0.5)
