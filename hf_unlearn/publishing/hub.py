"""Publish an unlearned checkpoint to the Hugging Face Hub.

`push_unlearned_to_hub(output_dir, repo_id)` checks that `output_dir` is a finished unlearning output
(docs/FORMATS.md), renders the model card from its JSON files (`hf_unlearn.publishing.card`), creates the repo if needed and
uploads the model, the card, `metrics.json`, `removal_record.json` and `unlearning_config.json` in **one commit**
(the card, the weights and the removal record always land together). What is uploaded is an explicit allowlist
(`hf_unlearn.publishing.hub_guard.plan_upload`): the files the run wrote (the `files` manifest in `unlearning_config.json`) that
match `ALLOW_PATTERNS`; anything else in the directory (checkpoints, logs, data, ledgers, folders) is skipped and named
in one warning, and symbolic links are never followed. Raw ids (`removed_ids.json`) are uploaded only with
`push_removed_ids=True`. A push is refused before any request if an uploaded text file names a local path (the
output, model or dataset directory, the home directory, the cache).

The local directory is never modified: the card is generated in memory. Every request has a timeout (`hub_timeout`,
`$HF_UNLEARN_HUB_TIMEOUT`, default 60 s), redirects are not followed, and a failed request is not retried (no
`Retry-After` sleep): rerun the push. Any failure after the local checks (no
token, HTTP error, redirect, timeout, unreadable answer, broken connection) raises `HubPushError`, a one-line
message that names the endpoint and ends with the path of the intact local output directory.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from . import hub_guard as _guard
from .hub_errors import _describe, _transport_errors
from .hub_guard import check_repo_id

__all__ = [
    "HubPushError",
    "push_unlearned_to_hub",
    "files_to_push",
    "check_output_dir",
    "ALLOW_PATTERNS",
    "check_repo_id",
    "WEIGHT_FILES",
]

logger = logging.getLogger(__name__)

NO_TOKEN_MESSAGE = "no Hugging Face token: run `hf auth login` or pass --token/set HF_TOKEN"

#: Any one of these is accepted as the model's weights.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
REQUIRED_FILES = ("config.json", "metrics.json", "removal_record.json", "unlearning_config.json")

#: The upload allowlist and the run's manifest live in hf_unlearn.publishing.hub_guard (`ALLOW_PATTERNS`, `plan_upload`).
ALLOW_PATTERNS = _guard.ALLOW_PATTERNS


class HubPushError(RuntimeError):
    """A push to the Hub failed; the local output directory was not modified.

    Attributes: `output_dir` (Path), `repo_id` (str), `reason` (str, one line)."""

    def __init__(self, reason: str, *, output_dir: str | os.PathLike, repo_id: str | None = None):
        self.reason = " ".join(str(reason).split())
        self.output_dir = Path(output_dir)
        self.repo_id = repo_id
        target = f" to {repo_id}" if repo_id else ""
        super().__init__(
            f"push{target} failed: {self.reason}; the local output directory is intact at {self.output_dir}"
        )


# ----------------------------------------------------------------------------------------------------------------
# local checks
# ----------------------------------------------------------------------------------------------------------------
def check_output_dir(output_dir: str | os.PathLike) -> Path:
    """Raise ValueError (naming what is missing and how to produce it) unless `output_dir` is a finished unlearning
    output: config.json, weights, metrics.json, removal_record.json and unlearning_config.json."""
    path = Path(output_dir)
    how = (
        f"produce it with `python scripts/unlearn.py ... --output_dir {path}` (or `UnlearningTrainer.save_unlearned`), "
        "which writes the model, metrics.json, removal_record.json and unlearning_config.json (docs/FORMATS.md)"
    )
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory: {how}")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append("model weights (model.safetensors, or a sharded/PyTorch checkpoint)")
    if missing:
        raise ValueError(f"{path} is not a finished unlearning output directory: missing {', '.join(missing)}; {how}")
    return path


def files_to_push(output_dir: str | os.PathLike, *, push_removed_ids: bool = False) -> list[str]:
    """Paths (relative, POSIX) of the files `push_unlearned_to_hub` uploads from `output_dir`, besides README.md
    (which it generates): the allowlist of `hf_unlearn.publishing.hub_guard.plan_upload`."""
    return _guard.plan_upload(output_dir, push_removed_ids=push_removed_ids)[0]


def _contains_id_lists(obj) -> bool:
    from .card import ID_LIST_KEYS

    if isinstance(obj, dict):
        return any(str(k).lower() in ID_LIST_KEYS for k in obj) or any(_contains_id_lists(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_contains_id_lists(v) for v in obj)
    return False


_TEXT_SUFFIXES = {".json", ".md", ".txt", ".yaml", ".yml", ".py", ".cfg", ".ini", ".toml"}


def _check_no_raw_ids(root: Path, texts: dict[str, str], card_text: str, push_removed_ids: bool) -> None:
    """Refuse to publish raw ids by accident: the removal record must not hold an id list, and no distinctive id from
    removed_ids.json (a string of 6+ characters that is not a plain number) may appear in an uploaded text file."""
    record = json.loads((root / "removal_record.json").read_text(encoding="utf-8"))
    if _contains_id_lists(record) and not push_removed_ids:
        raise ValueError(
            f"{root / 'removal_record.json'} contains a raw id list; the removal record must only hold counts, the "
            "rule and the commitment (docs/FORMATS.md). Regenerate it, or pass push_removed_ids=True to publish ids."
        )
    ids_file = root / "removed_ids.json"
    if push_removed_ids or not ids_file.is_file():
        return
    try:
        ids = json.loads(ids_file.read_text(encoding="utf-8")).get("ids") or []
    except (ValueError, AttributeError):
        return
    distinctive = {str(i) for i in ids if len(str(i)) >= 6 and not str(i).lstrip("-").isdigit()}
    if not distinctive:
        return
    texts = {"README.md (generated card)": card_text, **texts}
    for name, text in texts.items():
        if any(i in text for i in distinctive):
            raise ValueError(
                f"{name} in {root} contains removed ids (from removed_ids.json); refusing to publish them. Remove "
                "them from the file, or pass push_removed_ids=True to publish the ids on purpose."
            )


def _check_no_local_paths(root: Path, output_dir, texts: dict[str, str], card_text: str, local_paths) -> None:
    """Refuse to publish a local path: no uploaded text file may name the output directory, the home directory,
    hf-unlearn's cache, the model or dataset directory recorded by the run, `local_paths`, or any existing absolute
    path on this machine."""
    paths = _guard.default_local_paths(output_dir) + [str(root)] + [os.fspath(p) for p in local_paths or ()]
    try:  # the run's own model/dataset names, in case an older version recorded them as paths
        config = json.loads((root / "unlearning_config.json").read_text(encoding="utf-8"))
        record = json.loads((root / "removal_record.json").read_text(encoding="utf-8"))
        recorded = [
            (config.get("original_model") or {}).get("name_or_path"),
            config.get("dataset_id"),
            (record.get("dataset") or {}).get("name"),
        ]
    except (OSError, ValueError, AttributeError):
        recorded = []
    paths += [p for p in recorded if isinstance(p, str) and os.path.isabs(os.path.expanduser(p))]
    texts = {**texts, "README.md (generated card)": card_text}  # last: the card copies the files, name the source
    found = _guard.find_local_path(texts, paths)
    if found:
        name, path = found
        raise ValueError(
            f"{name} in {root} contains the local path {path}; published files must name models and datasets by "
            "Hub id or directory base name: regenerate the output with this version of scripts/unlearn.py, or edit "
            "the file"
        )


# ----------------------------------------------------------------------------------------------------------------
# push
# ----------------------------------------------------------------------------------------------------------------
def push_unlearned_to_hub(
    output_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    token: str | None = None,
    push_removed_ids: bool = False,
    commit_message: str | None = None,
    endpoint: str | None = None,
    hub_timeout: float | None = None,
    local_paths=(),
) -> str:
    """Upload an unlearning output directory (docs/FORMATS.md) to the Hub in one commit; return the commit URL.

    Args:
        output_dir: the directory written by `scripts/unlearn.py` / `UnlearningTrainer.save_unlearned`.
        repo_id: `namespace/name` (or `name`, in the token owner's namespace). Created if missing.
        private: create the repo private. If the repo already exists and is public, the push is refused.
        revision: a branch to push to (created from `main` if missing) or an existing `refs/pr/N`. Pushing files
            identical to the branch head creates no commit (the URL of the head commit is returned).
        create_pr: open a pull request (against `revision`, default `main`) instead of pushing to the branch.
        token: a Hub token with write access (default: `HF_TOKEN` or the token saved by `hf auth login`).
        push_removed_ids: also upload `removed_ids.json`, the raw removed ids (off by default: the card and the
            removal record only publish counts, the rule and a SHA-256 commitment).
        commit_message: default "Unlearn <N> samples with <method> (hf-unlearn)".
        endpoint: the Hub URL (default: `HF_ENDPOINT` or https://huggingface.co).
        hub_timeout: seconds each request may take to connect and to answer (default: `$HF_UNLEARN_HUB_TIMEOUT`,
            else 60).
        local_paths: more local paths (model and dataset directories) that no uploaded file may contain; the output
            directory, the home directory and hf-unlearn's cache are always checked.

    Returns:
        The commit URL: a `huggingface_hub.CommitInfo` (a `str` subclass; `.oid`, and `.pr_url` with `create_pr`).

    Raises:
        ValueError: `output_dir` is not a finished unlearning output, the repo id or timeout is invalid, an
            allowlisted file is a symbolic link, or it would publish raw ids or a local path (nothing was sent).
        HubPushError: the push failed (no token, HTTP error, redirect, timeout, unreadable answer, broken
            connection); the local directory is intact.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token

    from .card import model_card_from_output_dir

    root = check_output_dir(output_dir).resolve()
    check_repo_id(repo_id)
    timeout = _guard.resolve_hub_timeout(hub_timeout)
    if push_removed_ids and not (root / "removed_ids.json").is_file():
        raise ValueError(f"push_removed_ids=True but {root / 'removed_ids.json'} does not exist")

    files, skipped = _guard.plan_upload(root, push_removed_ids=push_removed_ids)
    card = model_card_from_output_dir(root, repo_id=repo_id, ids_published=push_removed_ids)
    card_text = str(card)
    # The text files are read once, without following links, and exactly these bytes are checked and uploaded.
    blobs = {rel: _guard.read_no_follow(root / rel) for rel in files if Path(rel).suffix.lower() in _TEXT_SUFFIXES}
    texts = {rel: blob.decode("utf-8", errors="replace") for rel, blob in blobs.items()}
    _check_no_raw_ids(root, texts, card_text, push_removed_ids)
    _check_no_local_paths(root, output_dir, texts, card_text, local_paths)
    if skipped:
        logger.warning(
            "not pushed from %s (not written by the run, or not in the upload allowlist): %s", root, ", ".join(skipped)
        )

    config = json.loads((root / "unlearning_config.json").read_text(encoding="utf-8"))
    record = json.loads((root / "removal_record.json").read_text(encoding="utf-8"))
    method = config.get("method") or "unknown"
    num_removed = record.get("num_removed")
    commitment = (record.get("commitment") or {}).get("value")
    if not commit_message:
        commit_message = (
            f"Unlearn {num_removed if num_removed is not None else 'some'} samples with {method} (hf-unlearn)"
        )
    description_lines = [
        f"Machine unlearning with hf-unlearn: method `{method}`, {num_removed} samples removed.",
        f"Removal commitment (salted Merkle root of the removed ids): `{commitment}`." if commitment else "",
        f"Raw removed ids published: {'yes (removed_ids.json)' if push_removed_ids else 'no'}.",
    ]
    commit_description = "\n".join(line for line in description_lines if line)

    token = token or get_token()
    api = HfApi(endpoint=endpoint, token=token, library_name="hf-unlearn")
    if not token:
        raise HubPushError(NO_TOKEN_MESSAGE, output_dir=root, repo_id=repo_id)

    operations = [CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card_text.encode("utf-8"))]
    handles = {rel: _guard.open_no_follow(root / rel) for rel in files if rel not in blobs}  # weights
    try:
        operations += [
            CommitOperationAdd(path_in_repo=rel, path_or_fileobj=blobs[rel] if rel in blobs else handles[rel])
            for rel in files
        ]

        def check_card(text: str) -> None:  # the card is re-rendered once the full repo id is known
            try:
                _check_no_raw_ids(root, texts, text, push_removed_ids)
                _check_no_local_paths(root, output_dir, texts, text, local_paths)
            except ValueError as err:  # not "the Hub rejected the upload": a local refusal, nothing committed
                raise _guard.LocalCheckError(str(err)) from err

        info = _commit(
            api,
            root,
            repo_id,
            operations,
            timeout,
            private=private,
            revision=revision,
            create_pr=create_pr,
            push_removed_ids=push_removed_ids,
            commit_message=commit_message,
            commit_description=commit_description,
            check_card=check_card,
        )
    finally:
        for handle in handles.values():
            handle.close()
    return info


def _commit(
    api,
    root: Path,
    repo_id: str,
    operations: list,
    timeout: float,
    *,
    private: bool,
    revision,
    create_pr: bool,
    push_removed_ids: bool,
    commit_message: str,
    commit_description: str,
    check_card,
):
    """The network part of `push_unlearned_to_hub`: create the repo, check privacy, create the branch, commit."""
    from huggingface_hub import CommitOperationAdd
    from huggingface_hub.errors import HfHubHTTPError

    from .card import model_card_from_output_dir

    network_errors = (
        HfHubHTTPError,
        _guard.HubRedirectError,
        _guard.HubStatusError,
        _guard.HubRetryError,
    ) + _transport_errors()
    with _guard.hub_session(timeout) as state:  # timeouts on, redirects off, for this push only
        try:
            repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            resolved = getattr(repo_url, "repo_id", None) or repo_id
            if resolved != repo_id:  # `name` -> `namespace/name`: the card's usage snippet names the full id
                repo_id = resolved
                card_text = str(model_card_from_output_dir(root, repo_id=repo_id, ids_published=push_removed_ids))
                check_card(card_text)
                operations[0] = CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card_text.encode("utf-8"))
            if private and not api.model_info(repo_id, timeout=timeout).private:
                raise HubPushError(
                    f"{repo_id} already exists and is public but private=True was requested; make it private on the Hub "
                    "first or push without --private",
                    output_dir=root,
                    repo_id=repo_id,
                )
            if revision and revision != "main" and not revision.startswith("refs/"):
                api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=commit_message,
                commit_description=commit_description,
                revision=revision,
                create_pr=create_pr,
                repo_type="model",
            )
        except (HubPushError, _guard.LocalCheckError):
            raise
        except network_errors + (json.JSONDecodeError, KeyError, TypeError, AttributeError, IndexError) as err:
            # JSONDecodeError / KeyError...: an answer that is not the Hub's JSON (an HTML page, missing keys)
            raise HubPushError(
                _describe(err, api.endpoint, state.get("last"), timeout), output_dir=root, repo_id=repo_id
            ) from err
        except ValueError as err:  # the Hub rejected the card's metadata (validate-yaml)
            raise HubPushError(f"the Hub rejected the upload: {err}", output_dir=root, repo_id=repo_id) from err
    logger.info("pushed %d files from %s to %s: %s", len(operations), root, repo_id, info)
    return info
