"""Reading a deletion request's ids file (``--forget_ids_file``): one id a line, or a JSON list, typed like the
id column. Re-exported by :mod:`hf_unlearn.data.selection` (``hf_unlearn.read_ids_file``)."""

from __future__ import annotations

import json
import re
from typing import Any

import datasets

__all__ = ["read_ids_file"]

_INT_TYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_STR_TYPES = ("string", "large_string")
_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)")


def read_ids_file(path: str, feature: Any = None) -> list:
    """The ids of a deletion request file, each once, in file order, typed like the id column.

    Accepted: UTF-8 text (a BOM, CRLF line endings and blank lines are fine) with one id per line, a JSON list
    of ids, or a JSON object ``{"ids": [...]}``. ``feature`` is the id column's ``datasets`` feature
    (``dataset.features[id_column]``): with an integer column, text ids must be written as plain integers
    ("007" and "7.0" are refused, not silently missed); with a string column, JSON integers become strings.
    Duplicates are dropped. Anything else raises a ``ValueError`` naming the file and the line or element.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:  # a directory, no permission, a broken link: bad input, not a crash
        raise ValueError(
            f"cannot read ids file {path} ({e.strerror or type(e).__name__}); pass a readable text "
            "file of ids (one per line, or a JSON list)."
        ) from None
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(f"ids file {path} is UTF-16 text; save it as UTF-8 (one id per line, or a JSON list).")
    if b"\x00" in raw:
        raise ValueError(
            f"ids file {path} is binary (it has NUL bytes); give a UTF-8 text file with one id per "
            "line, or a JSON list of ids."
        )
    try:
        text = raw.decode("utf-8-sig")  # -sig: a BOM written by Windows editors is not part of the first id
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ValueError(
            f"ids file {path} is not UTF-8 text (undecodable byte at line {line}); save it as UTF-8."
        ) from None
    kind = _id_kind(feature, path)
    stripped = text.strip()
    if not stripped:
        raise ValueError(
            f"ids file {path} contains no ids: the forget set is empty; put one id per line (or a JSON list)."
        )
    if stripped[0] in "[{":
        try:
            parsed = json.loads(stripped)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"ids file {path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                "fix it, or write one id per line."
            ) from None
        if isinstance(parsed, dict):
            if "ids" not in parsed:
                raise ValueError(
                    f"ids file {path} is a JSON object without an 'ids' key (keys: "
                    f'{sorted(parsed)[:5]}); give a JSON list of ids or {{"ids": [...]}}.'
                )
            parsed = parsed["ids"]
            if not isinstance(parsed, list):
                raise ValueError(f"ids file {path}: 'ids' is a JSON {type(parsed).__name__}, not a list of ids.")
        ids = [_json_id(v, kind, path, i) for i, v in enumerate(parsed)]
    else:
        ids = [
            _text_id(line.strip(), kind, f"ids file {path}, line {n}")
            for n, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    if not ids:
        raise ValueError(
            f"ids file {path} contains no ids: the forget set is empty; put one id per line (or a JSON list)."
        )
    return list(dict.fromkeys(ids))  # a request names each sample once; keep the file's order


def _id_kind(feature: Any, path: str) -> str | None:
    if feature is None:
        return None
    dtype = getattr(feature, "dtype", None) if isinstance(feature, datasets.Value) else None
    if dtype in _INT_TYPES:
        return "int"
    if dtype in _STR_TYPES:
        return "str"
    raise ValueError(
        f"the id column has type {feature!r}; ids from {path} can only be matched against an "
        "integer or string column: pass --id_column_name / id_column= naming one."
    )


def _text_id(token: str, kind: str | None, where: str):
    if kind == "int":
        if not _CANONICAL_INT.fullmatch(token):
            raise ValueError(
                f"{where}: {token!r} is not written as a plain integer, but the id column holds "
                "integers (a leading zero, sign, decimal point or space would silently match nothing, "
                "or another row); write each id exactly as the column's value, e.g. 7 (not 007, +7, 7.0)."
            )
        return int(token)
    return token


def _json_id(value: Any, kind: str | None, path: str, index: int):
    where = f"ids file {path}, element {index}"
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        what = "null" if value is None else type(value).__name__
        raise ValueError(
            f"{where}: a JSON {what} ({json.dumps(value)[:40]}); ids must be strings or integers in a flat list."
        )
    if isinstance(value, float):
        raise ValueError(
            f"{where}: {value!r} is a float; ids must be JSON strings or integers, written exactly "
            "as the id column's values."
        )
    if kind == "int":
        if isinstance(value, str):
            return _text_id(value, kind, where)  # "7" in a JSON list of an int column: same rule as text
        return value
    if kind == "str" and isinstance(value, int):
        return str(value)  # JSON ids of a string column written as numbers
    return value
