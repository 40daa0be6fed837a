"""Card metadata about the original model: its ``license`` and the Hub ``base_model`` behind a local directory.

``describe_original(name_or_path, revision, license=None)`` returns what the model card needs and
``hf_unlearn.cli.main`` stores it in ``unlearning_config.json``'s ``original_model`` block (docs/FORMATS.md):

* ``base_model``: a Hub id for the original. For a Hub id that is the id itself (``hf-hub:timm/x`` -> ``timm/x``);
  for a local directory, the Hub id its ``config.json`` names (``_name_or_path``, written by transformers 4 but
  no longer by transformers 5; timm's ``pretrained_cfg.hf_hub_id``), else its README's ``base_model:`` (what
  ``Trainer.push_to_hub``/``create_model_card`` writes for a fine-tune), else None.
* ``license``: the ``--license`` flag when given; else the original's license when known (its model card's
  ``license:`` metadata, or timm's ``pretrained_cfg.license``); else None, and the card says it is not set.
* ``license_source``: where it came from ("--license", "model card", "config"), ``detected_license``: what the
  original declares (kept even when ``--license`` overrides it).

Nothing here raises or reaches the network on its own: a Hub original's README/config are read through
``hf_hub_download``, which honours ``HF_HUB_OFFLINE`` (then only the local cache is used) and any failure means
"unknown".
"""

from __future__ import annotations

import json
import os
from typing import Any

__all__ = ["describe_original", "hub_id_of", "license_from_model_dir"]


def hub_id_of(name_or_path: str | None) -> str | None:
    """``name_or_path`` as a Hub repo id when it is one (``timm`` prefixes removed), else None."""
    from .card import is_hub_repo_id

    if not name_or_path:
        return None
    name = name_or_path[len("hf-hub:") :] if name_or_path.startswith("hf-hub:") else name_or_path
    return name if is_hub_repo_id(name) else None


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _card_field(readme: str | None, key: str) -> str | None:
    if not readme or not os.path.isfile(readme):
        return None
    try:
        from huggingface_hub.repocard import metadata_load

        value = (metadata_load(readme) or {}).get(key)
    except Exception:  # a malformed card: the value is unknown, not an error of the run
        return None
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return str(value) if isinstance(value, str) and value.strip() else None


def _card_license(readme: str | None) -> str | None:
    return _card_field(readme, "license")


def _config_license(config: dict) -> str | None:
    for holder in (config, config.get("pretrained_cfg") or {}):
        value = holder.get("license") if isinstance(holder, dict) else None
        if isinstance(value, str) and value.strip():
            return value
    return None


def _config_base_model(config: dict) -> str | None:
    pretrained = config.get("pretrained_cfg") if isinstance(config.get("pretrained_cfg"), dict) else {}
    for candidate in (config.get("_name_or_path"), pretrained.get("hf_hub_id")):
        if isinstance(candidate, str) and hub_id_of(candidate):
            return hub_id_of(candidate)
    return None


def license_from_model_dir(path: str) -> tuple[str | None, str | None]:
    """``(license, source)`` declared by a model directory's README.md metadata or config.json."""
    found = _card_license(os.path.join(path, "README.md"))
    if found:
        return found, "model card"
    found = _config_license(_read_json(os.path.join(path, "config.json")))
    return (found, "config") if found else (None, None)


def _hub_file(repo_id: str, filename: str, revision: str | None) -> str | None:
    try:
        from huggingface_hub import hf_hub_download

        return hf_hub_download(repo_id, filename, revision=revision)
    except Exception:  # offline, missing file, gated repo...: unknown
        return None


def describe_original(name_or_path: str, revision: str | None = None, *, license: str | None = None) -> dict[str, Any]:
    """``{"base_model", "license", "license_source", "detected_license"}`` for the original model (see module doc)."""
    detected, source, base_model = None, None, None
    if os.path.isdir(name_or_path):
        detected, source = license_from_model_dir(name_or_path)
        base_model = _config_base_model(_read_json(os.path.join(name_or_path, "config.json"))) or hub_id_of(
            _card_field(os.path.join(name_or_path, "README.md"), "base_model")
        )
    else:
        base_model = hub_id_of(name_or_path)
        if base_model:
            detected = _card_license(_hub_file(base_model, "README.md", revision))
            source = "model card" if detected else None
            if not detected:
                config_path = _hub_file(base_model, "config.json", revision)
                detected = _config_license(_read_json(config_path)) if config_path else None
                source = "config" if detected else None
    chosen, chosen_source = (license, "--license") if license else (detected, source)
    return {"base_model": base_model, "license": chosen, "license_source": chosen_source, "detected_license": detected}
