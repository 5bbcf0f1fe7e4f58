"""The data-location convention every loader shares."""
import os

import pytest

from gnnagg.datasets import store


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    (data / "set" / "raw").mkdir(parents=True)
    (data / "set" / "raw" / "a.txt").write_text("alpha")
    (data / "file.zip").write_bytes(b"zip")
    os.chmod(data / "set" / "raw" / "a.txt", 0o444)
    monkeypatch.setenv("GNNAGG_DATA", str(data))
    monkeypatch.setenv("GNNAGG_CACHE", str(cache))
    return data, cache


def test_stage_copies_into_writable_cache(dirs):
    data, cache = dirs
    dst = store.stage("set")
    assert dst == cache / "set"
    copied = dst / "raw" / "a.txt"
    assert copied.read_text() == "alpha"
    copied.write_text("ALPHA")  # the cache is writable; the source is untouched
    assert (data / "set" / "raw" / "a.txt").read_text() == "alpha"
    store.stage("set")  # same size present: not copied again
    assert copied.read_text() == "ALPHA"
    copied.write_text("truncated")  # a different size: the raw copy is restored
    store.stage("set")
    assert copied.read_text() == "alpha"


def test_require_file_and_missing_error(dirs):
    data, cache = dirs
    assert store.require_file("file.zip") == data / "file.zip"
    with pytest.raises(store.MissingDataError) as err:
        store.require_file("gtn/none.zip", what="GTN loader")
    message = str(err.value)
    assert "missing gtn/none.zip" in message and str(data / "gtn" / "none.zip") in message
    assert str(cache / "gtn") in message and "GNNAGG_DATA" in message


def test_load_staged_turns_download_failure_into_named_error(dirs):
    data, cache = dirs

    def build(path):
        raise OSError("network unreachable")

    with pytest.raises(store.MissingDataError, match="missing set/raw/b.txt") as err:
        store.load_staged("toy", "set", ["raw/a.txt", "raw/b.txt"], build)
    assert "network unreachable" in str(err.value)
    assert "raw/a.txt" not in str(err.value).split("missing")[1]
    assert store.load_staged("toy", "set", ["raw/a.txt"], lambda p: p) == cache / "set"
    with pytest.raises(OSError, match="unreachable"):  # not a missing-file problem
        store.load_staged("toy", "set", ["raw/a.txt"], build)


def test_unset_data_dir_is_named(monkeypatch, tmp_path):
    monkeypatch.delenv("GNNAGG_DATA", raising=False)
    monkeypatch.setenv("GNNAGG_CACHE", str(tmp_path))
    with pytest.raises(store.MissingDataError, match="GNNAGG_DATA \\(not set\\)"):
        store.require_file("x/y.csv")
