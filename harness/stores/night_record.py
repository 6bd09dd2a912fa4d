"""One validation of a night's record on every way into and out of the ledger.

A record reaches the ledger from a night (:func:`trainguard.checks.trend.history_entry`), from ``trainguard ledger
import`` (JSON lines anyone may have edited), from a shared PostgreSQL database other hosts write, and from a history
branch anyone with push access may change. Everything downstream — drift, speed, the report, the published
dashboard, ``ledger export`` writing ``<profile>/<class>.jsonl`` — trusts what :func:`validate_record` lets through:

- every key known, every value of the type and length the schema says (the database's column limits enforced on
  SQLite too, not only where PostgreSQL would refuse them);
- names that become file names or HTML ids (profile, device class, run id) from a safe alphabet: no ``/``, no ``..``;
- every number finite (an old record's gap ratios aside, infinite where a seed had no gap); no control characters in
  text;
- the time an ISO 8601 instant, normalised to UTC so that nights order by when they ran, whoever recorded them.

What it cannot see: a record that is well-formed and false (numbers made up by whoever can write the database). The
ledger is as trustworthy as its writers; the dashboard escapes whatever it shows regardless (report/dashboard.py).
"""

from __future__ import annotations

import datetime as dt
import math
import re

from ..core.errors import ConfigError
from ..core.retired import record_keys

FORMAT_VERSION = 1

RESULTS = ("PASS", "FAIL", "NOTHING CHECKED", "TIMING ONLY")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")  # profile, device class, run id: file names and HTML ids
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # tabs and newlines are text; the rest of C0 is not

# the database's column limits (stores/ledger.py) and generous limits for the rest
LIMITS = {"run_id": 64, "profile": 200, "device_class": 100, "time": 40, "result": 40, "commit": 80,
          "name": 200, "text": 4000, "list": 1000, "map": 1000}


class _Invalid(Exception):
    pass


def _fail(where: str, what: str):
    raise _Invalid(f"{where}: {what}")


def _text(value, where: str, limit: int = LIMITS["text"]) -> str:
    if not isinstance(value, str):
        _fail(where, f"expected text, got {type(value).__name__}")
    if len(value) > limit:
        _fail(where, f"longer than {limit} characters ({len(value)})")
    if _CONTROL.search(value):
        _fail(where, "holds a control character")
    return value


def _safe_name(value, where: str, limit: int) -> str:
    _text(value, where, limit)
    if not SAFE_NAME.fullmatch(value) or ".." in value:
        _fail(where, f"{value!r} is not a plain name (letters, digits, _ . + -; no '..')")
    return value


def _number(value, where: str, infinite_ok: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(where, f"expected a number, got {type(value).__name__}")
    if math.isnan(value) or (math.isinf(value) and not infinite_ok):
        _fail(where, f"not a finite number ({value})")
    return value


def _scalar(value, where: str):
    if isinstance(value, list):  # a setting that is a list (a schedule's milestones): of scalars only
        for number, item in enumerate(_sequence(value, where)):
            if isinstance(item, (list, dict)):
                _fail(f"{where}[{number}]", "a nested list or mapping where a setting's value belongs")
            _scalar(item, f"{where}[{number}]")
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return _number(value, where)
    return _text(value, where)


def _mapping(value, where: str, limit: int = LIMITS["map"]) -> dict:
    if not isinstance(value, dict):
        _fail(where, f"expected a mapping, got {type(value).__name__}")
    if len(value) > limit:
        _fail(where, f"more than {limit} entries")
    for key in value:
        _text(key, f"{where} key", LIMITS["name"])
    return value


def _sequence(value, where: str) -> list:
    if not isinstance(value, list):
        _fail(where, f"expected a list, got {type(value).__name__}")
    if len(value) > LIMITS["list"]:
        _fail(where, f"more than {LIMITS['list']} items")
    return value


def _time(value, where: str) -> str:
    _text(value, where, LIMITS["time"])
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        _fail(where, f"{value!r} is not an ISO 8601 time")
    if instant.tzinfo is None:
        _fail(where, f"{value!r} has no time zone")
    return instant.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _per_seed(value, where: str, infinite_ok: bool = False) -> dict:
    for seed, number in _mapping(value, where).items():
        if not seed.lstrip("-").isdigit():
            _fail(f"{where} key", f"{seed!r} is not a seed")
        _number(number, f"{where}[{seed}]", infinite_ok)
    return value


def _cells(value, where: str) -> dict:
    for model, budgets in _mapping(value, where).items():
        for budget, metrics in _mapping(budgets, f"{where}[{model}]").items():
            if not budget.isdigit():
                _fail(f"{where}[{model}] key", f"{budget!r} is not a budget")
            for metric, per_seed in _mapping(metrics, f"{where}[{model}][{budget}]").items():
                _per_seed(per_seed, f"{where}[{model}][{budget}][{metric}]")
    return value


def _speed(value, where: str) -> dict:
    for model, measured in _mapping(value, where).items():
        for key, number in _mapping(measured, f"{where}[{model}]").items():
            _scalar(number, f"{where}[{model}][{key}]")
    return value


def _experiments(value, where: str) -> dict:
    """The declared experiments' values: name → variant → budget → metric → seed → value."""
    for name, variants in _mapping(value, where).items():
        _text(name, f"{where} key", LIMITS["name"])
        _cells(variants, f"{where}[{name}]")
    return value


def _legacy_gaps(value, where: str) -> dict:
    """Retired record keys (trainguard.core.retired): per-framework gaps, framework → quantity → seed → value (a ratio
    infinite where a seed had no gap); still read, no longer written."""
    for framework, quantities in _mapping(value, where).items():
        for quantity, per_seed in _mapping(quantities, f"{where}[{framework}]").items():
            _per_seed(per_seed, f"{where}[{framework}][{quantity}]", infinite_ok=True)
    return value


def _nested_scalars(value, where: str) -> dict:
    for name, settings in _mapping(value, where).items():
        if isinstance(settings, dict):
            for key, item in _mapping(settings, f"{where}[{name}]").items():
                _scalar(item, f"{where}[{name}][{key}]")
        else:
            _scalar(settings, f"{where}[{name}]")
    return value


def _texts(value, where: str) -> list:
    for number, item in enumerate(_sequence(value, where)):
        _text(item, f"{where}[{number}]")
    return value


def _replay(value, where: str) -> dict:
    for name, outcome in _mapping(value, where).items():
        _mapping(outcome, f"{where}[{name}]")
        unknown = set(outcome) - {"status", "message"}
        if unknown:
            _fail(f"{where}[{name}]", f"unknown keys {sorted(unknown)}")
        _text(outcome.get("status", ""), f"{where}[{name}][status]", LIMITS["name"])
        _text(outcome.get("message", ""), f"{where}[{name}][message]")
    return value


def _bands(value, where: str) -> dict:
    for cell, band in _mapping(value, where).items():
        if cell == "metric":
            _text(band, f"{where}[metric]", LIMITS["name"])
            continue
        if not isinstance(band, list) or len(band) != 2:
            _fail(f"{where}[{cell}]", "expected [low, high]")
        for bound in band:
            if bound is not None:
                _number(bound, f"{where}[{cell}]", infinite_ok=True)
    return value


def _experiment_bands(value, where: str) -> dict:
    """A declared experiment's name → metric → the bands its trend charts of that metric shade ("VARIANT-BUDGET" →
    [low, high]); a record written before every metric was kept holds one metric, as :func:`_bands` reads it."""
    for name, bands in _mapping(value, where).items():
        _text(name, f"{where} key", LIMITS["name"])
        if isinstance(bands, dict) and isinstance(bands.get("metric"), str):  # the earlier form: its first metric
            _bands(bands, f"{where}[{name}]")
            continue
        for metric, cells in _mapping(bands, f"{where}[{name}]").items():
            _text(metric, f"{where}[{name}] key", LIMITS["name"])
            _bands(cells, f"{where}[{name}][{metric}]")
    return value


def experiment_bands_of(record: dict, name: str) -> dict:
    """metric → "VARIANT-BUDGET" → [low, high] of experiment ``name`` in a night ``record``, whichever form it was
    written in (an earlier record kept its first metric only)."""
    bands = (record.get("experiment_bands") or {}).get(name) or {}
    if isinstance(bands.get("metric"), str):
        return {bands["metric"]: {cell: band for cell, band in bands.items() if cell != "metric"}}
    return bands


def _sources(value, where: str) -> dict:
    """A declared experiment's name → the sha256 of its source (hex)."""
    for name, digest in _mapping(value, where).items():
        _text(name, f"{where} key", LIMITS["name"])
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            _fail(f"{where}[{name}]", f"expected a sha256 in hex, got {str(digest)[:80]!r}")
    return value


def _seeds(value, where: str) -> list:
    for number, seed in enumerate(_sequence(value, where)):
        if isinstance(seed, bool) or not isinstance(seed, int):
            _fail(f"{where}[{number}]", f"expected an integer seed, got {seed!r}")
    return value


def _positive_int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        _fail(where, f"expected a positive integer, got {value!r}")
    return value


def _result(value, where: str) -> str:
    if value not in RESULTS:
        _fail(where, f"{value!r} is not one of {', '.join(RESULTS)}")
    return value


def _boolean(value, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, f"expected true or false, got {value!r}")
    return value


#: key → its validator (value, where) → the value to store. Required keys are listed in REQUIRED.
FIELDS = {
    "format_version": lambda v, w: v if v == FORMAT_VERSION else _fail(w, f"{v!r}, expected {FORMAT_VERSION}"),
    "run_id": lambda v, w: _safe_name(v, w, LIMITS["run_id"]),
    "profile": lambda v, w: _safe_name(v, w, LIMITS["profile"]),
    "device_class": lambda v, w: _safe_name(v, w, LIMITS["device_class"]),
    "time": _time,
    "result": _result,
    "commit": lambda v, w: _text(v, w, LIMITS["commit"]),
    "hardware": lambda v, w: _text(v, w, LIMITS["name"]),
    "versions": _nested_scalars,
    "data": lambda v, w: _text(v, w, LIMITS["name"]) if v is not None else v,
    "training": _nested_scalars,
    "seeds": _seeds,
    "window": _positive_int,
    "cells": _cells,
    "speed": _speed,
    "experiments": _experiments,
    "sources": _sources,
    **{key: _legacy_gaps for key in record_keys()},
    "failed": _texts,
    "flags": _texts,
    "failures": _texts,
    "replay": _replay,
    "bands": _bands,
    "experiment_bands": _experiment_bands,
    "rerendered": _boolean,
}
REQUIRED = ("format_version", "run_id", "profile", "device_class", "time")


def validate_record(entry, source: str) -> dict:
    """``entry`` checked whole against the schema above, its time normalised to UTC; a ConfigError naming
    ``source`` (a file and line, a database and night) and the first field that is wrong otherwise."""
    try:
        if not isinstance(entry, dict):
            _fail("the record", f"expected a mapping, got {type(entry).__name__}")
        missing = [key for key in REQUIRED if key not in entry]
        if missing:
            _fail("the record", f"lacks {', '.join(missing)}")
        unknown = sorted(set(entry) - set(FIELDS))
        if unknown:
            _fail("the record", f"unknown keys {unknown} (a record of a newer trainguard, or not a night's record)")
        return {key: FIELDS[key](value, key) for key, value in entry.items()}
    except _Invalid as exc:
        raise ConfigError(f"{source}: not a valid night record — {exc}; the ledger takes no part of it") from None
