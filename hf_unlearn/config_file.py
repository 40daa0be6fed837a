"""Config files for the command line, as transformers and TRL accept them.

* transformers' examples: a lone ``.json`` (or ``.yaml``) argument holds every setting
  (``hf-unlearn unlearn run.json``).
* TRL: ``--config run.yaml`` plus any flags; the flags win over the file.

Both forms give the file's values as *defaults* of the parser: an explicit flag on the command line always
overrides them, and the file overrides the method's training defaults and the embedded preset.
"""

from __future__ import annotations

import json
import os

__all__ = ["CONFIG_SUFFIXES", "split_config_argument", "read_config_file"]

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
        raise ConfigFileError(f"config file {path} cannot be parsed ({type(e).__name__}: {first}); fix its syntax.") from e
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
