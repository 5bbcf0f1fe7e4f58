"""Where data comes from: one convention for every gnnagg loader.

* ``GNNAGG_DATA`` names one or more read-only folders (separated by
  ``os.pathsep``) laid out like the project's offline data folder: e.g.
  ``planetoid/Cora/raw/ind.cora.x``, ``ogb/ogbg_molhiv/raw/...``,
  ``gtn/gtn-acm.zip``, ``glue/SST-2/train.tsv``.
* ``GNNAGG_CACHE`` names a writable folder (default:
  ``$XDG_CACHE_HOME/gnnagg`` or ``~/.cache/gnnagg``). Raw files are copied
  from ``GNNAGG_DATA`` into the cache before PyG or OGB process them, since
  those loaders write ``processed/`` next to ``raw/``.
* When a file is in neither place, the loader downloads the original (PyG and
  OGB do this themselves). When that fails too, :class:`MissingDataError`
  names the missing file and every place that was looked in.
* Integrity (:mod:`gnnagg.datasets.integrity`): files with a known checksum
  (the data folder's ``SHA256SUMS``, or an original's hash) are verified
  when staged or first read; each staged cache folder keeps a manifest of
  the hashes of its files, and its ``processed/`` files are rebuilt whenever
  the files they were built from change (an edit of the same size included).
  A file that fails to load is named in a :class:`CorruptDataError`, with
  the cache folder to delete. Nothing is ever written into ``GNNAGG_DATA``.
"""
from __future__ import annotations

import gzip
import os
import pickle
import shutil
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, TypeVar

from .integrity import (MANIFEST, ChecksumError, CorruptDataError, Manifest, check_known,
                        copy_hashing, culprit, known_checksums, sha256_of, stamp)

T = TypeVar("T")
#: Folders that loaders derive from the raw files (PyG's and OGB's).
DERIVED = ("processed",)
#: Errors that only a damaged or malformed file raises (others are named as
#: data errors only when the file being read is known).
_READ_ERRORS = (EOFError, pickle.UnpicklingError, zlib.error, gzip.BadGzipFile,
                zipfile.BadZipFile, UnicodeDecodeError)


class MissingDataError(FileNotFoundError):
    """A data file was found neither in ``GNNAGG_DATA``, nor in the cache,
    nor could it be downloaded."""


def data_dirs() -> List[Path]:
    """The read-only data folders named by ``GNNAGG_DATA``, in order."""
    value = os.environ.get("GNNAGG_DATA", "")
    return [Path(p).expanduser() for p in value.split(os.pathsep) if p]


def cache_dir(*parts: str) -> Path:
    """A writable folder below ``GNNAGG_CACHE`` (created on demand)."""
    root = os.environ.get("GNNAGG_CACHE")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "gnnagg"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def find(rel: str) -> Optional[Path]:
    """The first ``GNNAGG_DATA`` folder's copy of ``rel``, if any."""
    found = find_with_root(rel)
    return None if found is None else found[1]


def find_with_root(rel: str) -> Optional[Tuple[Path, Path]]:
    """``(data folder, path)`` of the first ``GNNAGG_DATA`` copy of ``rel``."""
    for d in data_dirs():
        candidate = d / rel
        if candidate.exists():
            return d, candidate
    return None


def places_looked(rel: str) -> List[str]:
    places = [str(d / rel) for d in data_dirs()]
    if not places:
        places.append("GNNAGG_DATA (not set)")
    return places


def _key(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _data_files(base: Path, only: Optional[str] = None) -> List[Path]:
    """Files of a staged folder, without derived folders, the manifest and
    unfinished copies."""
    if only is not None:
        return [base / only] if (base / only).is_file() else []
    if not base.is_dir():
        return []
    out = []
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if (rel.parts[0] in DERIVED or path.name.endswith((MANIFEST, ".partial"))
                or not path.is_file()):
            continue
        out.append(path)
    return out


def _sync(src: Path, dst: Path, key: str, manifest: Manifest, rel: str, root: Path) -> None:
    """Copy one ``GNNAGG_DATA`` file into the cache unless the cached copy is
    known (by size and time of both) to hold the same bytes; verify it
    against its known checksums whenever it is (re)hashed."""
    entry = manifest.files.get(key)
    st = src.stat()
    if (entry is not None and entry.get("source") == str(src)
            and entry.get("source_size") == st.st_size
            and entry.get("source_mtime_ns") == st.st_mtime_ns and manifest.fresh(key, dst)):
        return
    tmp = dst.with_name(dst.name + ".partial")
    try:
        digest = copy_hashing(src, tmp)
        check_known(src, digest, rel, root, "replace it with a good copy (it was not copied "
                    "into the cache)")
        # Copies drop the read-only bits of the source folder on purpose.
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    manifest.files[key] = {"sha256": digest, **stamp(dst), "source": str(src),
                           "source_size": st.st_size, "source_mtime_ns": st.st_mtime_ns}


def _refresh(base: Path, manifest: Manifest, rel: str, only: Optional[str] = None) -> None:
    """Hash the cached files that are new or changed since they were hashed
    (downloads, edits), check originals' known hashes, forget deleted ones."""
    seen = set()
    for path in _data_files(base, only):
        key = _key(path, base)
        seen.add(key)
        if manifest.fresh(key, path):
            continue
        digest = sha256_of(path)
        check_known(path, digest, f"{rel}/{key}" if only is None else rel,
                    fix=f"delete {base} to stage or download the data again")
        manifest.files[key] = {"sha256": digest, **stamp(path)}
    for key in list(manifest.files):
        if key not in seen:
            del manifest.files[key]


def _stage(rel: str, cache_rel: Optional[str] = None) -> Tuple[Path, Manifest]:
    dst = cache_dir() / (cache_rel if cache_rel is not None else rel)
    found = find_with_root(rel)
    is_file = found[1].is_file() if found is not None else dst.is_file()
    base, only = (dst.parent, dst.name) if is_file else (dst, None)
    # A single file's manifest sits beside it, a folder's inside it.
    manifest = Manifest(base, f".{dst.name}{MANIFEST}" if is_file else MANIFEST)
    if found is not None:
        root, src = found
        sources = [src] if is_file else [p for p in sorted(src.rglob("*")) if p.is_file()]
        for path in sources:
            key = dst.name if is_file else _key(path, src)
            target = base / key
            target.parent.mkdir(parents=True, exist_ok=True)
            _sync(path, target, key, manifest, _key(path, root), root)
    _refresh(base, manifest, rel, only)
    _save(manifest)
    return dst, manifest


def _save(manifest: Manifest) -> None:
    # Never create or keep a folder just for a manifest: OGB takes a folder
    # without RELEASE_v1.txt for an old release and asks a question.
    if manifest.files:
        if manifest.changed or not manifest.path.exists():
            manifest.save()
    elif manifest.path.exists():
        manifest.path.unlink()


def stage(rel: str, cache_rel: Optional[str] = None) -> Path:
    """Copy ``GNNAGG_DATA/rel`` (a file or a folder) into the cache.

    A file is copied (and verified against its known checksums) when it is
    new, when the ``GNNAGG_DATA`` file changed, or when the cached copy was
    changed; an unchanged one costs a ``stat``. Returns the path in the
    cache, whether or not anything was found to copy.

    Raises:
        ChecksumError: a file's SHA-256 is not the one its data folder's
            ``SHA256SUMS`` (or :data:`~gnnagg.datasets.integrity.KNOWN_SHA256`)
            lists; it is not copied.
    """
    return _stage(rel, cache_rel)[0]


def missing_error(what: str, files: Sequence[str], cache_root: Path,
                  cause: Optional[BaseException] = None) -> MissingDataError:
    """An error that names each missing file and every place looked in."""
    lines = [f"{what}: data files not found and could not be downloaded"
             + (f" ({type(cause).__name__}: {cause})" if cause else "") + "."]
    for rel in files:
        lines.append(f"  missing {rel}; looked in: "
                     + ", ".join(places_looked(rel) +
                                 [str(cache_root / Path(rel).name)]))
    lines.append("Set GNNAGG_DATA to a folder holding these files (laid out "
                 "as above) or connect to the internet.")
    return MissingDataError("\n".join(lines))


def require_file(rel: str, what: str = "gnnagg") -> Path:
    """A read-only data file that is never processed in place (e.g. a zip
    or a TSV): the ``GNNAGG_DATA`` copy, else a cached one. A
    ``GNNAGG_DATA`` file with a known checksum is verified the first time it
    is read and again whenever its size or time changes (the hashes are
    remembered in the cache, never written into ``GNNAGG_DATA``)."""
    found = find_with_root(rel)
    if found is not None and found[1].is_file():
        root, src = found
        if known_checksums(rel, root):
            manifest = Manifest(cache_dir("verified"), rel.replace("/", "__") + ".json")
            entry = manifest.files.get("file")
            if entry is None or entry.get("source") != str(src) or not manifest.fresh("file", src):
                digest = sha256_of(src)
                check_known(src, digest, rel, root)
                manifest.files = {"file": {"sha256": digest, **stamp(src), "source": str(src)}}
                manifest.save()
        return src
    cached = cache_dir() / rel
    if cached.is_file():
        return cached
    raise missing_error(what, [rel], cached.parent)


def _clear(dst: Path, manifest: Manifest) -> None:
    for name in DERIVED:
        if (dst / name).exists():
            shutil.rmtree(dst / name)
    manifest.built_from = None


def load_staged(what: str, rel_dir: str, raw_files: Iterable[str],
                build: Callable[[Path], T]) -> T:
    """Stage ``rel_dir`` into the cache and build a data set from it.

    ``build(cache_path)`` constructs the PyG/OGB data set (which downloads
    by itself when the raw files are missing). The processed files in the
    cache are deleted first when the files they were built from changed (or
    are unknown), and once more, with a warning, when they fail to load.

    Raises:
        MissingDataError: building failed while some of ``raw_files``
            (relative to ``rel_dir``) are missing.
        ChecksumError: a file with a known checksum does not match it.
        CorruptDataError: a file failed to load; the message names it and
            the cache folder to delete.
    """
    dst, manifest = _stage(rel_dir)
    raw_files = list(raw_files)
    if manifest.built_from != manifest.hashes() and any((dst / n).exists() for n in DERIVED):
        _clear(dst, manifest)
    for attempt in (0, 1):
        try:
            result = build(dst)
            break
        except Exception as exc:  # download failures come in many types
            missing = [f for f in raw_files if not (dst / f).exists()]
            if missing:
                raise missing_error(what, [f"{rel_dir}/{f}" for f in missing],
                                    dst, exc) from exc
            bad = culprit(exc, dst)
            derived = [dst / n for n in DERIVED if (dst / n).exists()]
            stale = [d for d in derived if bad is None or d.resolve() in bad.parents]
            if attempt == 0 and stale:
                warnings.warn(f"{what}: could not load the processed files in {stale[0]} "
                              f"({type(exc).__name__}: {exc}); rebuilding them from the raw files")
                _clear(dst, manifest)
                continue
            if bad is None and not isinstance(exc, _READ_ERRORS):
                raise
            raise CorruptDataError(_corrupt_message(what, dst, bad, exc, manifest)) from exc
    # Files downloaded by the loader are hashed once, here.
    _refresh(dst, manifest, rel_dir)
    manifest.built_from = manifest.hashes()
    _save(manifest)
    return result


def _corrupt_message(what: str, dst: Path, bad: Optional[Path], exc: BaseException,
                     manifest: Manifest) -> str:
    cause = f"{type(exc).__name__}: {exc}"
    if bad is None:
        return (f"{what}: building the data set from {dst} failed ({cause}). If a file "
                f"there is damaged, delete {dst} to stage or download it again.")
    entry = manifest.files.get(_key(bad, dst.resolve()) if dst.resolve() in bad.parents else "")
    source = (entry or {}).get("source")
    if source:
        return (f"{what}: could not read {bad} ({cause}). It was copied from {source}, which "
                f"is damaged or not in the expected format: replace that file with a good "
                f"copy, then delete {dst}.")
    return (f"{what}: could not read {bad} ({cause}). The file is damaged or not in the "
            f"expected format: delete {dst} to stage or download it again.")


__all__ = ["MissingDataError", "ChecksumError", "CorruptDataError", "data_dirs", "cache_dir",
           "find", "stage", "require_file", "load_staged", "missing_error"]
