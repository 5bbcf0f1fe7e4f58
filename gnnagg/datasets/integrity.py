"""Checksums, cache manifests and named errors for data files.

* Known checksums: a ``GNNAGG_DATA`` folder's own ``SHA256SUMS`` (``sha256sum``
  format, paths relative to that folder) and :data:`KNOWN_SHA256`, hashes of
  original files (e.g. the Planetoid release). A file with a known checksum
  is verified when it is staged; a mismatch is a :class:`ChecksumError`.
* A :class:`Manifest` in each staged cache folder records, per file, its
  SHA-256 with the size and modification time it had when hashed (and those
  of the ``GNNAGG_DATA`` file it was copied from), and the hashes the
  processed files were built from. A file is hashed again only when its size
  or modification time changed, so loading an unchanged data set costs one
  ``stat`` per file.
* :func:`culprit` finds which file under a folder a loader was reading when
  it failed, so the error can name it (PyG and OGB raise a bare ``EOFError``).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..utils import write_json

MANIFEST = ".gnnagg-manifest.json"
_FORMAT = 1

#: SHA-256 of original files, by their path in the offline data layout.
#: Planetoid: the files of https://github.com/kimiyoung/planetoid (``data/``),
#: which the project's data folder holds byte for byte; the same hashes are
#: pinned independently by other projects for that repository's commit
#: af6abf468a772cc055bec88c52e4d6f51b7c37e3.
KNOWN_SHA256: Dict[str, str] = {
    "planetoid/Cora/raw/ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "planetoid/Cora/raw/ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "planetoid/Cora/raw/ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "planetoid/Cora/raw/ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "planetoid/Cora/raw/ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "planetoid/Cora/raw/ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "planetoid/Cora/raw/ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "planetoid/Cora/raw/ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "planetoid/CiteSeer/raw/ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "planetoid/CiteSeer/raw/ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "planetoid/CiteSeer/raw/ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "planetoid/CiteSeer/raw/ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "planetoid/CiteSeer/raw/ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "planetoid/CiteSeer/raw/ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "planetoid/CiteSeer/raw/ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "planetoid/CiteSeer/raw/ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
}


class CorruptDataError(ValueError):
    """A data file could not be read (truncated, edited or not in the
    expected format); the message names it and the cache folder to clear."""


class ChecksumError(CorruptDataError):
    """A data file's SHA-256 is not the known one."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksum(path: Path, expected: str) -> None:
    """Raise :class:`ChecksumError` unless ``path`` has SHA-256 ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise ChecksumError(
            f"refusing to unpickle {path}: its SHA-256 is {actual}, expected "
            f"{expected}. The file is not the known archive (corrupt or "
            f"replaced); pickles from unknown sources can run code.")


_SUMS: Dict[Path, Tuple[Tuple[int, int], Dict[str, str]]] = {}


def _sums(root: Path) -> Dict[str, str]:
    """``root/SHA256SUMS`` as {relative path: hash}, read once per change."""
    path = root / "SHA256SUMS"
    try:
        st = path.stat()
    except OSError:
        return {}
    stamp = (st.st_size, st.st_mtime_ns)
    if path in _SUMS and _SUMS[path][0] == stamp:
        return _SUMS[path][1]
    table = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and len(parts[0]) == 64:
            name = parts[1].lstrip("*")  # '*' marks binary mode
            table[name[2:] if name.startswith("./") else name] = parts[0].lower()
    _SUMS[path] = (stamp, table)
    return table


def known_checksums(rel: str, root: Optional[Path] = None) -> List[Tuple[str, str]]:
    """``(sha256, where it is stated)`` for the data file ``rel`` (a path in
    the offline layout), from ``root/SHA256SUMS`` and :data:`KNOWN_SHA256`."""
    out = []
    if root is not None and rel in _sums(root):
        out.append((_sums(root)[rel], str(root / "SHA256SUMS")))
    if rel in KNOWN_SHA256:
        out.append((KNOWN_SHA256[rel], "gnnagg.datasets.integrity.KNOWN_SHA256"))
    return out


def check_known(path: Path, digest: str, rel: str, root: Optional[Path] = None,
                fix: str = "replace it with a good copy") -> None:
    """Raise :class:`ChecksumError` when ``digest`` (of ``path``) is not the
    known checksum of ``rel``; ``fix`` says what to do about it."""
    for expected, where in known_checksums(rel, root):
        if digest != expected:
            raise ChecksumError(
                f"{path} is damaged or not the original: its SHA-256 is {digest}, but "
                f"{where} lists {expected} for {rel}. {fix[0].upper()}{fix[1:]}.")


def copy_hashing(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` and return the SHA-256 of the bytes copied:
    one read for both, so the hash is that of the copy."""
    digest = hashlib.sha256()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for block in iter(lambda: fin.read(1 << 20), b""):
            digest.update(block)
            fout.write(block)
    return digest.hexdigest()


def stamp(path: Path) -> Dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


class Manifest:
    """What a staged cache folder holds: ``files`` maps each file (relative
    path) to ``{sha256, size, mtime_ns}`` plus, for copies,
    ``{source, source_size, source_mtime_ns}``; ``built_from`` is the
    ``{file: sha256}`` the processed files were built from (:obj:`None`:
    unknown). A missing or unreadable manifest is an empty one. It is kept
    in ``folder`` as ``name``."""

    def __init__(self, folder: Path, name: str = MANIFEST) -> None:
        self.folder = folder
        self.path = folder / name
        self.files: Dict[str, dict] = {}
        self.built_from: Optional[Dict[str, str]] = None
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") == _FORMAT:
                self.files = dict(data["files"])
                self.built_from = data.get("built_from")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        self._saved = self._state()

    def _state(self):
        return json.dumps([self.files, self.built_from], sort_keys=True)

    @property
    def changed(self) -> bool:
        """Whether there is anything to save."""
        return self._state() != self._saved

    def fresh(self, key: str, path: Path) -> bool:
        """Whether ``path`` still has the size and time it had when hashed."""
        entry = self.files.get(key)
        try:
            return entry is not None and stamp(path) == {
                "size": entry["size"], "mtime_ns": entry["mtime_ns"]}
        except OSError:
            return False

    def hashes(self) -> Dict[str, str]:
        return {key: entry["sha256"] for key, entry in sorted(self.files.items())}

    def save(self) -> None:
        write_json(str(self.path), {"format": _FORMAT, "files": self.files,
                                    "built_from": self.built_from})
        self._saved = self._state()


def _as_path(value) -> Optional[Path]:
    if not isinstance(value, (str, os.PathLike)):
        value = getattr(value, "name", None)  # an open file
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    # File contents held in a local are not paths.
    if not isinstance(value, str) or not value or len(value) > 4096 or "\n" in value:
        return None
    return Path(value)


def culprit(exc: BaseException, folder: Path) -> Optional[Path]:
    """The file below ``folder`` that the innermost frame of ``exc``'s
    traceback (or of its causes) was working on, if any: loaders keep the
    path they read in a local variable (PyG's ``read_file(..)`` has
    ``path``, ``torch.load`` has ``f``)."""
    root = folder.resolve()
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        frames = []
        tb = exc.__traceback__
        while tb is not None:
            frames.append(tb.tb_frame)
            tb = tb.tb_next
        for frame in reversed(frames):
            for value in list(frame.f_locals.values()):
                path = _as_path(value)
                if path is None:
                    continue
                try:
                    resolved = path.resolve()
                    if root in resolved.parents and resolved.is_file():
                        return resolved
                except (OSError, RuntimeError, ValueError):
                    continue
        exc = exc.__cause__ or exc.__context__
    return None
