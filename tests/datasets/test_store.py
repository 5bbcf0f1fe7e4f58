"""The data-location convention every loader shares."""
import hashlib
import os

import pytest

from gnnagg.datasets import integrity, store


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
    store.stage("set")  # an edited copy of the same size is restored too
    assert copied.read_text() == "alpha"
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


# Integrity: a toy loader that behaves like PyG's (processed/ is reused when it
# exists, raw files are only read to build it). #################################

def _toy_build(path):
    processed = path / "processed" / "data.txt"
    if processed.is_file():
        text = processed.read_text()
        if not text.startswith("built:"):
            raise RuntimeError("PytorchStreamReader failed reading zip archive")
        return text[len("built:"):]
    raw = path / "raw" / "a.txt"
    with open(raw) as f:
        text = f.read()
    if not text.isalpha():
        raise EOFError("Ran out of input")
    processed.parent.mkdir(parents=True, exist_ok=True)
    processed.write_text("built:" + text.upper())
    return text.upper()


def _load():
    return store.load_staged("toy", "set", ["raw/a.txt"], _toy_build)


def _edit(path, text, mtime_ns=None):
    """Rewrite a read-only data file; a new time unless ``mtime_ns`` is given."""
    os.chmod(path, 0o644)
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(mtime_ns or before + 10**9,) * 2)
    os.chmod(path, 0o444)


def _snapshot(folder):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


def test_processed_is_rebuilt_when_the_data_change(dirs):
    data, cache = dirs
    src = data / "set" / "raw" / "a.txt"
    assert _load() == "ALPHA"
    assert (cache / "set" / integrity.MANIFEST).is_file()
    _edit(src, "bravo")  # same size, new content
    assert _load() == "BRAVO"
    _edit(src, "alpha")  # the good file restored
    assert _load() == "ALPHA"
    _edit(src, "alphabet")  # another size
    assert _load() == "ALPHABET"
    (cache / "set" / "raw" / "a.txt").write_text("ALPHABET")  # cache copy edited
    assert _load() == "ALPHABET" and (cache / "set" / "raw" / "a.txt").read_text() == "alphabet"


def test_unchanged_data_are_not_hashed_again(dirs, monkeypatch):
    data, cache = dirs
    assert _load() == "ALPHA"
    calls = []
    for name in ("sha256_of", "copy_hashing"):
        original = getattr(store, name)
        monkeypatch.setattr(store, name, lambda *a, _o=original, _n=name: calls.append(_n) or _o(*a))
    assert _load() == "ALPHA" and calls == []
    _edit(data / "set" / "raw" / "a.txt", "alpha")  # touched, same bytes
    assert _load() == "ALPHA" and calls == ["copy_hashing"]
    assert (cache / "set" / "processed" / "data.txt").read_text() == "built:ALPHA"


def test_data_folder_checksums_are_verified(dirs):
    data, cache = dirs
    good = hashlib.sha256(b"alpha").hexdigest()
    (data / "SHA256SUMS").write_text(f"{good}  ./set/raw/a.txt\n{'0' * 64}  ./other.bin\n")
    assert _load() == "ALPHA"
    _edit(data / "set" / "raw" / "a.txt", "bravo")
    with pytest.raises(store.ChecksumError) as err:
        _load()
    message = str(err.value)
    assert str(data / "set" / "raw" / "a.txt") in message and good in message
    assert str(data / "SHA256SUMS") in message and "not copied" in message
    assert (cache / "set" / "raw" / "a.txt").read_text() == "alpha"  # nothing copied
    with pytest.raises(store.ChecksumError):  # and it stays refused
        _load()
    _edit(data / "set" / "raw" / "a.txt", "alpha")
    assert _load() == "ALPHA"


def test_known_original_hashes_are_verified(dirs, monkeypatch):
    data, cache = dirs
    monkeypatch.setitem(integrity.KNOWN_SHA256, "set/raw/a.txt",
                        hashlib.sha256(b"omega").hexdigest())
    with pytest.raises(store.ChecksumError, match="KNOWN_SHA256 lists"):
        _load()


def test_unreadable_raw_file_is_named(dirs):
    data, cache = dirs
    _edit(data / "set" / "raw" / "a.txt", "alp\x00")  # damaged, no checksum known
    with pytest.raises(store.CorruptDataError) as err:
        _load()
    message = str(err.value)
    assert f"could not read {(cache / 'set' / 'raw' / 'a.txt').resolve()} (EOFError" in message
    assert f"copied from {data / 'set' / 'raw' / 'a.txt'}" in message
    assert f"then delete {cache / 'set'}" in message


def test_unreadable_processed_files_are_rebuilt(dirs):
    data, cache = dirs
    assert _load() == "ALPHA"
    (cache / "set" / "processed" / "data.txt").write_text("garbage")
    with pytest.warns(UserWarning, match="rebuilding them from the raw files"):
        assert _load() == "ALPHA"
    assert (cache / "set" / "processed" / "data.txt").read_text() == "built:ALPHA"


def test_downloaded_files_are_tracked(dirs, monkeypatch):
    data, cache = dirs
    monkeypatch.setenv("GNNAGG_DATA", str(data / "nothing-here"))

    def download_then_build(path):
        raw = path / "raw" / "a.txt"
        if not raw.exists():
            raw.parent.mkdir(parents=True, exist_ok=True)
            raw.write_text("delta")
        return _toy_build(path)

    load = lambda: store.load_staged("toy", "set", ["raw/a.txt"], download_then_build)  # noqa
    assert load() == "DELTA"
    assert integrity.Manifest(cache / "set").built_from == {
        "raw/a.txt": hashlib.sha256(b"delta").hexdigest()}
    assert load() == "DELTA"
    (cache / "set" / "raw" / "a.txt").write_text("gamma")  # edited in the cache
    assert load() == "GAMMA"


def test_require_file_verifies_once_per_change(dirs, monkeypatch):
    data, cache = dirs
    (data / "SHA256SUMS").write_text(f"{hashlib.sha256(b'zip').hexdigest()}  file.zip\n")
    assert store.require_file("file.zip") == data / "file.zip"
    calls = []
    monkeypatch.setattr(store, "sha256_of", lambda p: calls.append(p) or integrity.sha256_of(p))
    assert store.require_file("file.zip") == data / "file.zip" and calls == []
    _edit(data / "file.zip", "zap")
    with pytest.raises(store.ChecksumError, match="file.zip is damaged"):
        store.require_file("file.zip")


def test_nothing_is_written_into_the_data_folder(dirs):
    data, cache = dirs
    (data / "SHA256SUMS").write_text(f"{hashlib.sha256(b'zip').hexdigest()}  file.zip\n")
    before = _snapshot(data)
    _load()
    store.require_file("file.zip")
    (cache / "set" / "processed" / "data.txt").write_text("garbage")
    with pytest.warns(UserWarning):
        _load()
    assert _snapshot(data) == before


def test_single_file_is_staged_with_its_own_manifest(dirs):
    data, cache = dirs
    dst = store.stage("file.zip")
    assert dst == cache / "file.zip" and dst.read_bytes() == b"zip"
    assert (cache / f".file.zip{integrity.MANIFEST}").is_file()
    dst.write_bytes(b"zap")
    assert store.stage("file.zip").read_bytes() == b"zip"


def test_culprit_is_the_innermost_file_being_read(tmp_path):
    (tmp_path / "a.bin").write_bytes(b"")
    (tmp_path / "b.bin").write_bytes(b"")

    def read(path):
        contents = "x" * 10_000  # noqa: F841 (a long local is not a path)
        raise EOFError

    def outer(folder):
        first = folder / "a.bin"  # noqa: F841
        read(str(folder / "b.bin"))

    with pytest.raises(EOFError) as err:
        outer(tmp_path)
    assert integrity.culprit(err.value, tmp_path) == (tmp_path / "b.bin").resolve()
    assert integrity.culprit(err.value, tmp_path / "elsewhere") is None
