"""What runners share on top of the library: typed configs with
command-line overrides (every option's help shows its default),
validation before any work starts, resumable series of runs and their
summaries over seeds.

Importing this module imports neither torch nor numpy, so that ``--help``
and argument errors are fast.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Type, TypeVar

from ..utils import (environment, fmt, format_table, mean_std, progress, seed_everything,
                     to_jsonable, write_json)

C = TypeVar("C")

__all__ = ["option", "add_config_arguments", "config_from_args", "check_positive", "check_choice",
           "check_fraction", "run_series", "over_runs", "environment", "fmt", "format_table",
           "mean_std", "progress", "seed_everything", "to_jsonable", "write_json"]


def option(default: Any, help: str) -> Any:
    """A config field with its help text, for :func:`add_config_arguments`."""
    return dataclasses.field(default=default, metadata={"help": help})


def _arg_type(tp):
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _arg_type(args[0])
    if origin in (list, tuple, List, Sequence):
        return _arg_type(typing.get_args(tp)[0])
    return tp


def _default_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return " ".join(str(v) for v in value) if value else "none"
    return str(value)


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: Type[C],
                         skip: Iterable[str] = (), defaults: Dict[str, str] = None) -> None:
    """Add one ``--field-name`` option per dataclass field. The parsed value
    is ``None`` when the option is not given ("keep the config's value");
    the help shows the field's default, or ``defaults[name]`` (e.g. "per
    model") where the default depends on other options."""
    hints = typing.get_type_hints(config_cls)
    defaults = defaults or {}
    skip = set(skip)
    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        tp = hints[f.name]
        flag = "--" + f.name.replace("_", "-")
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = None
        shown = defaults.get(f.name, _default_text(default))
        help_ = f.metadata.get("help", "")
        if "(default:" not in help_:
            help_ = f"{help_} (default: {shown})".strip()
        origin = typing.get_origin(tp)
        is_list = origin in (list, tuple) or (
            origin is typing.Union and any(
                typing.get_origin(a) in (list, tuple) for a in typing.get_args(tp)))
        base = _arg_type(tp)
        if base is bool:
            parser.add_argument(flag, dest=f.name, default=None,
                                action=argparse.BooleanOptionalAction, help=help_)
        else:
            parser.add_argument(flag, dest=f.name, default=None, type=base,
                                nargs="+" if is_list else None, help=help_,
                                metavar=f.name.upper())


def config_from_args(config: C, args: argparse.Namespace) -> C:
    """A copy of ``config`` with every option the user gave applied."""
    changes = {}
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value = getattr(args, f.name, None)
        if value is not None:
            tp = hints[f.name]
            is_tuple = tuple in (typing.get_origin(tp), *map(typing.get_origin, typing.get_args(tp)))
            changes[f.name] = tuple(value) if isinstance(value, list) and is_tuple else value
    return dataclasses.replace(config, **changes)


def check_positive(config: Any, *names: str, allow_zero: Sequence[str] = ()) -> None:
    """Every named numeric option is > 0 (>= 0 for those in ``allow_zero``)."""
    for name in names:
        value = getattr(config, name)
        if value is None:
            continue
        low_ok = name in allow_zero
        if isinstance(value, (tuple, list)):
            bad = [v for v in value if (v < 0 if low_ok else v <= 0)]
        else:
            bad = [value] if (value < 0 if low_ok else value <= 0) else []
        if bad:
            bound = ">= 0" if low_ok else "> 0"
            raise ValueError(f"--{name.replace('_', '-')} must be {bound} (got {value})")


def check_fraction(config: Any, *names: str) -> None:
    """Every named option lies in [0, 1) (dropout rates and the like)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and not 0.0 <= value < 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1) (got {value})")


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> None:
    choices = list(choices)
    if value not in choices:
        raise ValueError(f"unknown --{name.replace('_', '-')} {value!r}; choose from {choices}")


# Series of runs ##############################################################

Record = Dict[str, Any]


def run_series(store, keys: Iterable[str], train: Callable[[str, Any], Record],
               partial: Optional[Callable[[List[Record]], Dict[str, Any]]] = None,
               stored: bool = False,
               on_record: Optional[Callable[[str, Record, bool], None]] = None) -> List[Record]:
    """The records of the runs ``keys`` of an experiment, resumable.

    A run that ``store`` (a :class:`gnnagg.train.RunStore`) holds is not
    redone; any other is ``train(key, store.checkpoint(key))`` and kept in
    ``store`` as soon as it finishes, with ``partial(records so far)`` (e.g.
    the summary) written beside it, so that an interrupted experiment loses
    at most the run in progress (which resumes from its epoch checkpoint).

    Args:
        stored: return the new records as stored (JSON values: lists for
            tuples, ``None`` for non-finite floats), so that a resumed
            series reads exactly as an uninterrupted one. (default: the
            records ``train`` returned)
        on_record: called with ``(key, record, new)`` after each run,
            finished now (``new``) or found in ``store``.
    """
    records: List[Record] = []
    for key in keys:
        record, new = store.get(key), False
        if record is None:
            record, new = train(key, store.checkpoint(key)), True
            store.put(key, record, partial=partial(records + [record]) if partial else None)
            if stored:
                record = store.get(key)
        records.append(record)
        if on_record is not None:
            on_record(key, record, new)
    return records


def over_runs(records: Sequence[Mapping[str, Any]], keys: Iterable[str],
              value: Optional[Callable[[Mapping[str, Any], str], float]] = None
              ) -> Dict[str, Dict[str, float]]:
    """``{key: mean +- std over records}`` of ``value(record, key)``
    (default: ``record[key]``), e.g. a metric at each seed's selected epoch."""
    value = value or (lambda record, key: record[key])
    return {k: mean_std([value(r, k) for r in records]) for k in keys}
