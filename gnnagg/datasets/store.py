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
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, TypeVar

T = TypeVar("T")


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
    for d in data_dirs():
        candidate = d / rel
        if candidate.exists():
            return candidate
    return None


def places_looked(rel: str) -> List[str]:
    places = [str(d / rel) for d in data_dirs()]
    if not places:
        places.append("GNNAGG_DATA (not set)")
    return places


def _copy_missing(src: Path, dst: Path) -> None:
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for child in src.iterdir():
            _copy_missing(child, dst / child.name)
    elif not dst.exists() or dst.stat().st_size != src.stat().st_size:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".partial")
        shutil.copyfile(src, tmp)
        # Copies drop the read-only bits of the source folder on purpose.
        os.replace(tmp, dst)


def stage(rel: str, cache_rel: Optional[str] = None) -> Path:
    """Copy ``GNNAGG_DATA/rel`` (a file or a folder) into the cache.

    Files already in the cache with the same size are kept. Returns the path
    in the cache, whether or not anything was found to copy.
    """
    dst = cache_dir() / (cache_rel if cache_rel is not None else rel)
    src = find(rel)
    if src is not None:
        _copy_missing(src, dst)
    return dst


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
    or a TSV): the ``GNNAGG_DATA`` copy, else a cached one."""
    src = find(rel)
    if src is not None and src.is_file():
        return src
    cached = cache_dir() / rel
    if cached.is_file():
        return cached
    raise missing_error(what, [rel], cached.parent)


def load_staged(what: str, rel_dir: str, raw_files: Iterable[str],
                build: Callable[[Path], T]) -> T:
    """Stage ``rel_dir`` into the cache and build a data set from it.

    ``build(cache_path)`` constructs the PyG/OGB data set (which downloads
    by itself when the raw files are missing). If building fails while some
    of ``raw_files`` (relative to ``rel_dir``) are missing, the failure is
    reported as a :class:`MissingDataError`.
    """
    dst = stage(rel_dir)
    raw_files = list(raw_files)
    try:
        return build(dst)
    except Exception as exc:  # download failures come in many types
        missing = [f for f in raw_files if not (dst / f).exists()]
        if not missing:
            raise
        raise missing_error(what, [f"{rel_dir}/{f}" for f in missing],
                            dst, exc) from exc
