"""Config files for the command line, as transformers and TRL accept them.

* transformers' examples: a lone ``.json`` (or ``.yaml``) argument holds every setting
  (``hf-unlearn unlearn run.json``).
* TRL: ``--config run.yaml`` plus any flags; the flags win over the file.

Both forms give the file's values as *defaults* of the parser: an explicit flag on the command line always
overrides them, and the file overrides the method's training defaults and the embedded preset.

argparse converts a default only when it is a string, so a file's value of another type would reach the run unchecked.
:func:`check_config_types` checks every value against its dataclass field's type first: a bool is not a number and a
number is not a bool; a float with a fraction is not an integer (a whole float such as ``8.0`` is read as ``8``); a
list is not a scalar; a string is converted as the flag would be (``1e-4`` for a float, ``true`` for a bool; YAML reads
``1e-4`` as a string); an integer where a string is expected is read as its text (``forget_classes: [3, 5]``); and a
single value for a list field is deliberately read as a one-element list (``forget_classes: 3`` is ``["3"]``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import types
import typing

__all__ = ["CONFIG_SUFFIXES", "split_config_argument", "read_config_file", "check_config_types"]

CONFIG_SUFFIXES = (".json", ".yaml", ".yml")


class ConfigFileError(ValueError):
    """A config file that is missing, unreadable or not a flat mapping of flag names to values."""


def split_config_argument(argv: list[str]) -> tuple[list[str], str | None]:
    """``(argv without the config reference, config path or None)``.

    Recognises ``--config PATH``, ``--config=PATH`` and a lone positional ``*.json``/``*.yaml``/``*.yml``
    (the first argument, or the only one), as transformers' example scripts do.
    """
    argv = list(argv)
    path = None
    for i, arg in enumerate(argv):
        if arg == "--config":
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                raise ConfigFileError("--config needs a file: --config run.yaml (or run.json).")
            path = argv[i + 1]
            del argv[i : i + 2]
            break
        if arg.startswith("--config="):
            path = arg.split("=", 1)[1]
            del argv[i]
            break
    if path is None and argv and argv[0].lower().endswith(CONFIG_SUFFIXES) and not argv[0].startswith("-"):
        path = argv.pop(0)
    if path is not None and ("--config" in argv or any(a.startswith("--config=") for a in argv)):
        raise ConfigFileError("give one config file (one --config or one lone .json/.yaml argument).")
    return argv, path


def read_config_file(path: str) -> dict:
    """The flat ``{flag name: value}`` mapping in a JSON or YAML file (hyphens in names read as underscores)."""
    if not os.path.isfile(path):
        raise ConfigFileError(f"config file {path} does not exist; pass an existing .json or .yaml file.")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if path.lower().endswith(".json"):
            data = json.loads(text) if text.strip() else {}
        else:
            import yaml

            data = yaml.safe_load(text) or {}
    except Exception as e:  # json.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError
        first = (str(e).splitlines() or [""])[0]
        raise ConfigFileError(
            f"config file {path} cannot be parsed ({type(e).__name__}: {first}); fix its syntax."
        ) from e
    if not isinstance(data, dict):
        raise ConfigFileError(
            f"config file {path} must hold a mapping of flag names to values (e.g. `method: lotus`), "
            f"not a {type(data).__name__}."
        )
    out = {}
    for key, value in data.items():
        if not isinstance(key, str):
            raise ConfigFileError(f"config file {path}: key {key!r} is not a flag name.")
        if isinstance(value, dict):
            raise ConfigFileError(f"config file {path}: '{key}' is a nested mapping; give flat flag values only.")
        out[key.lstrip("-").replace("-", "_")] = value
    return out


# ---- types -------------------------------------------------------------------------------------------------------
_NO = object()  # "does not fit this type"
_TRUE, _FALSE = ("true", "yes", "y", "1"), ("false", "no", "n", "0")  # as transformers' string_to_bool


def _fit(value, tp, convert: bool):
    """``value`` as type ``tp``, or ``_NO``. ``convert=False``: only values already of the type (a union tries
    every arm that way first, so ``str | bool`` keeps a bool a bool)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        several = len([a for a in args if a is not type(None)]) > 1
        for attempt in (False, True) if convert else (False,):
            for arm in args:
                if attempt and several and arm is str and not isinstance(value, str):
                    continue  # an integer is read as text only where text is the one type (not `dict | str`)
                got = _fit(value, arm, attempt)
                if got is not _NO:
                    return got
        return _NO
    if tp is type(None):
        return None if value is None else _NO
    if origin is typing.Literal:
        return value if any(value == a and type(value) is type(a) for a in args) else _NO
    if origin is list or tp is list:
        item = args[0] if args else typing.Any
        if isinstance(value, (list, tuple)):
            out = [_fit(v, item, False) for v in value]
            if convert:
                out = [o if o is not _NO else _fit(v, item, True) for o, v in zip(out, value, strict=False)]
            return _NO if any(o is _NO for o in out) else out
        if convert:  # one value for a list field: a one-element list (documented above)
            got = _fit(value, item, True)
            return _NO if got is _NO else [got]
        return _NO
    if origin is dict or tp is dict:
        return value if isinstance(value, dict) else _NO
    if tp is bool:
        if isinstance(value, bool):
            return value
        if convert and isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        return _NO
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if convert and isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        if convert and isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _NO
        return _NO
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if convert and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                return _NO
        return _NO
    if tp is str:
        if isinstance(value, str):
            return value
        return str(value) if convert and isinstance(value, int) and not isinstance(value, bool) else _NO
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return value if isinstance(value, str) and value in [m.value for m in tp] else _NO
    return value if isinstance(tp, type) and isinstance(value, tp) else _NO


_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    type(None): "null",
    dict: "a mapping",
}


def _describe(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        parts = list(dict.fromkeys(_describe(a) for a in args if a is not type(None)))
        return " or ".join(parts + (["null"] if type(None) in args else []))
    if origin is typing.Literal:
        return " or ".join(json.dumps(a) for a in args)
    if origin is list or tp is list:
        plural = {bool: "booleans", int: "integers", float: "numbers", str: "strings"}
        return f"a list of {plural.get(args[0], _describe(args[0]))}" if args else "a list"
    if origin is dict:
        return "a mapping"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(str(m.value) for m in tp)
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def check_config_types(values: dict, classes, path: str | None) -> dict:
    """``values`` (a config file's) checked against the types of the fields they set in the dataclasses
    ``classes``, converted where a flag would be (see the module doc); ConfigFileError naming the key and the
    expected type for the first value that does not fit. Keys of no field are left to the caller."""
    hints: dict = {}
    for cls in classes:
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        hints.update({k: v for k, v in typing.get_type_hints(cls).items() if k in names})
    out = {}
    for key, value in values.items():
        if key not in hints:
            out[key] = value
            continue
        got = _fit(value, hints[key], True)
        if got is _NO:
            shown = json.dumps(value, default=str)
            raise ConfigFileError(
                f"config file {path}: '{key}' must be {_describe(hints[key])}, got {shown} "
                f"({_yaml_type(value)}); fix that value in the file."
            )
        out[key] = got
    return out


def _yaml_type(value) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        type(None): "null",
    }.get(type(value), type(value).__name__)
