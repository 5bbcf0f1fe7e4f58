import numpy as np
import pytest

from gnnagg.datasets import MissingDataError
from gnnagg.datasets.glue import GLUE_TASKS, glue_task, load_glue, parse_glue_tsv
from gnnagg.datasets.stress import CONTEXTS, DISTRACTORS, NEGATIONS, make_stress, stress_splits

from gnnagg.metrics import METRICS

# Tiny files in each task's official layout (header rows as GLUE writes them).
TINY = {
    "SST-2/train.tsv": "sentence\tlabel\nit 's \"good\" .\t1\nbad film \t0\n",
    "CoLA/train.tsv": "gj04\t1\t\tThe cat sat.\ngj04\t0\t*\tCat the sat.\n",
    "RTE/train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tA man sleeps.\tSomeone sleeps.\t"
                     "entailment\n1\tA dog.\tA cat.\tnot_entailment\n",
    "MRPC/train.tsv": "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\tHe left.\tHe went.\n"
                      "0\t3\t4\tRain.\tSun.\n",
    "STS-B/train.tsv": "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                       "sentence2\tscore\n0\tx\tx\tx\tx\tx\tx\tA cat.\tA cat!\t5.000\n"
                       "1\tx\tx\tx\tx\tx\tx\tA.\tB.\t0.4\n",
    "QQP/train.tsv": "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                     "5\t11\t12\tHow do I cook rice?\tHow is rice cooked?\t1\n"
                     "6\t13\t14\tWhy is the sky blue?\tWho wrote \"Emma\"?\t0\n",
    "QNLI/train.tsv": "index\tquestion\tsentence\tlabel\n0\tWho?\tShe did.\tentailment\n"
                      "1\tWhen?\tIt rained.\tnot_entailment\n",
    "MNLI/train.tsv": "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
                      "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\t"
                      "sentence2\tlabel1\tgold_label\n"
                      "0\t1\t1e\tgov\t( a )\t( b )\t(S a)\t(S b)\tIt is hot.\tIt is warm.\t"
                      "entailment\tentailment\n"
                      "1\t2\t2c\tgov\t( a )\t( b )\t(S a)\t(S b)\tIt is hot.\tIt is cold.\t"
                      "contradiction\tcontradiction\n",
    "MNLI/dev_matched.tsv": "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
                            "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
                            "sentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\tlabel5\t"
                            "gold_label\n0\t3\t3n\tfiction\t( a )\t( b )\t(S a)\t(S b)\t"
                            "A boy.\tA tall boy.\tneutral\tneutral\tneutral\tentailment\t"
                            "neutral\tneutral\n",
    "MNLI/dev_mismatched.tsv": "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\t"
                               "sentence2_binary_parse\tsentence1_parse\tsentence2_parse\t"
                               "sentence1\tsentence2\tlabel1\tlabel2\tlabel3\tlabel4\t"
                               "label5\tgold_label\n0\t4\t4c\tletters\t( a )\t( b )\t"
                               "(S a)\t(S b)\tYes.\tNo.\tcontradiction\tcontradiction\t"
                               "contradiction\tcontradiction\tcontradiction\tcontradiction\n",
    "WNLI/train.tsv": "index\tsentence1\tsentence2\tlabel\n0\tI lent him my pen.\t"
                      "He lent me a pen.\t0\n1\tThe cup fell; it broke.\tThe cup broke.\t1\n",
}
#: task -> split -> (text_a, text_b, labels), by hand from TINY
EXPECTED = {
    "sst2": {"train": (["it 's \"good\" .", "bad film"], None, [1, 0])},
    "cola": {"train": (["The cat sat.", "Cat the sat."], None, [1, 0])},
    "rte": {"train": (["A man sleeps.", "A dog."], ["Someone sleeps.", "A cat."], [0, 1])},
    "mrpc": {"train": (["He left.", "Rain."], ["He went.", "Sun."], [1, 0])},
    "stsb": {"train": (["A cat.", "A."], ["A cat!", "B."], [5.0, 0.4])},
    "qqp": {"train": (["How do I cook rice?", "Why is the sky blue?"],
                      ["How is rice cooked?", "Who wrote \"Emma\"?"], [1, 0])},
    "qnli": {"train": (["Who?", "When?"], ["She did.", "It rained."], [0, 1])},
    "mnli": {"train": (["It is hot.", "It is hot."], ["It is warm.", "It is cold."], [0, 2]),
             "dev": (["A boy."], ["A tall boy."], [1]),
             "dev_mismatched": (["Yes."], ["No."], [2])},
    "wnli": {"train": (["I lent him my pen.", "The cup fell; it broke."],
                       ["He lent me a pen.", "The cup broke."], [0, 1])},
}


def _write(root, bom=False, crlf=False):
    for rel, text in TINY.items():
        path = root / "glue" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if crlf:
            text = text.replace("\n", "\r\n")
        path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))


@pytest.fixture
def tiny_glue(tmp_path, monkeypatch):
    _write(tmp_path)
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path))
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("bom, crlf", [(False, False), (True, False), (False, True),
                                       (True, True)])
def test_reads_every_glue_format(tmp_path, monkeypatch, bom, crlf):
    # MRPC's official files begin with a UTF-8 byte-order mark.
    _write(tmp_path, bom=bom, crlf=crlf)
    monkeypatch.setenv("GNNAGG_DATA", str(tmp_path))
    assert sorted(EXPECTED) == sorted(GLUE_TASKS)
    for task, splits in EXPECTED.items():
        for split, (a, b, y) in splits.items():
            got = load_glue(task, split)
            assert (got.task, got.split) == (task, split)
            assert got.text_a == a and got.text_b == b
            if GLUE_TASKS[task].regression:
                assert got.labels.dtype == np.float32
                np.testing.assert_allclose(got.labels, y, rtol=1e-6)
            else:
                assert got.labels.dtype == np.int64 and got.labels.tolist() == y
    assert load_glue("STS-B").task == "stsb" and load_glue("Sst_2").task == "sst2"


def test_task_specs_name_their_metrics():
    main = {"sst2": "accuracy", "cola": "mcc", "mrpc": "f1", "qqp": "f1", "stsb": "spearman",
            "mnli": "accuracy", "qnli": "accuracy", "rte": "accuracy", "wnli": "accuracy"}
    for key, spec in GLUE_TASKS.items():
        assert spec.metric == spec.metrics[0] == main[key]
        assert all(m in METRICS for m in spec.metrics)
    assert set(GLUE_TASKS["mrpc"].metrics) == set(GLUE_TASKS["qqp"].metrics) == {"f1", "accuracy"}
    assert set(GLUE_TASKS["stsb"].metrics) == {"pearson", "spearman"}
    assert GLUE_TASKS["mnli"].num_classes == 3 and GLUE_TASKS["stsb"].regression


def test_bom_header_is_not_a_column_name():
    text = "\ufeffQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\r\n1\t1\t2\ta\tb\r\n"
    a, b, y = parse_glue_tsv(text, glue_task("mrpc"))
    assert (a, b, y.tolist()) == (["a"], ["b"], [1])


def test_errors_name_the_problem(tiny_glue):
    with pytest.raises(MissingDataError, match="glue/SST-2/dev.tsv"):
        load_glue("sst2", "dev")
    with pytest.raises(MissingDataError, match="glue/MNLI/dev_matched.tsv"):
        (tiny_glue / "glue" / "MNLI" / "dev_matched.tsv").unlink()
        load_glue("mnli", "dev")
    with pytest.raises(ValueError, match="unknown GLUE task"):
        load_glue("qqq")
    with pytest.raises(ValueError, match="split must be one of \\['train', 'dev'\\]"):
        load_glue("sst2", "test")
    with pytest.raises(ValueError, match="dev_mismatched"):
        load_glue("mnli", "test")
    with pytest.raises(ValueError, match="line 2: 1 tab-separated fields, expected 2"):
        parse_glue_tsv("sentence\tlabel\nno label here\n", glue_task("sst2"))
    # A stray tab would shift the label column: refused, not misread.
    with pytest.raises(ValueError, match="line 3: 5 tab-separated fields, expected 4"):
        parse_glue_tsv("index\tsentence1\tsentence2\tlabel\n0\ta\tb\t0\n1\ta\tb\tc\t1\n",
                       glue_task("wnli"))
    with pytest.raises(ValueError, match="line 1: 3 tab-separated fields, expected 4"):
        parse_glue_tsv("gj04\t1\tThe cat sat.\n", glue_task("cola"))
    (tiny_glue / "glue" / "SST-2" / "dev.tsv").write_bytes(b"sentence\tlabel\n\xff\xfe\t1\n")
    with pytest.raises(ValueError, match="SST-2/dev.tsv: not UTF-8"):
        load_glue("sst2", "dev")
    with pytest.raises(ValueError, match="bad label"):
        parse_glue_tsv("index\tsentence1\tsentence2\tlabel\n0\ta\tb\tmaybe\n", glue_task("rte"))
    with pytest.raises(ValueError, match="no column 'sentence'"):
        parse_glue_tsv("text\tlabel\na\t1\n", glue_task("sst2"))


def test_subsample_is_deterministic(tiny_glue):
    sst = load_glue("sst2")
    assert sst.subsample(None) is sst
    one = sst.subsample(1, seed=3)
    assert len(one) == 1 and one.text_a == sst.subsample(1, seed=3).text_a


@pytest.mark.data("glue")
def test_offline_glue_row_counts():
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
