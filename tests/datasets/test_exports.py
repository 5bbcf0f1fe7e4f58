"""``gnnagg.datasets`` exports its loaders where a user looks first, lazily."""
import subprocess
import sys

import pytest

import gnnagg.datasets as datasets


def test_import_is_light():
    code = ("import sys, gnnagg.datasets as d\n"
            "heavy = [m for m in ('torch', 'torch_geometric', 'numpy') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", sorted(datasets._EXPORTS))
def test_every_export_is_the_module_object(name):
    import importlib

    module = importlib.import_module(f"gnnagg.datasets.{datasets._EXPORTS[name]}")
    assert getattr(datasets, name) is getattr(module, name)
    assert name in datasets.__all__ and name in dir(datasets)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'load_cora'"):
        datasets.load_cora  # noqa: B018
    from gnnagg.datasets import gtn, integrity

    assert gtn.ChecksumError is integrity.ChecksumError is datasets.ChecksumError
