"""Data sets and loaders. See :mod:`gnnagg.datasets.store` for where data
is read from (``GNNAGG_DATA``) and cached (``GNNAGG_CACHE``)."""
from .store import MissingDataError, cache_dir, data_dirs, load_staged, require_file, stage

__all__ = ["MissingDataError", "cache_dir", "data_dirs", "load_staged", "require_file", "stage"]
