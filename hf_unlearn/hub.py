"""Publish an unlearned checkpoint to the Hugging Face Hub.

`push_unlearned_to_hub(output_dir, repo_id)` checks that `output_dir` is a finished unlearning output
(docs/FORMATS.md), renders the model card from its JSON files (`hf_unlearn.card`), creates the repo if needed and
uploads the model, the card, `metrics.json`, `removal_record.json` and `unlearning_config.json` in **one commit**
(the card, the weights and the removal record always land together). Raw ids (`removed_ids.json`) are uploaded only
with `push_removed_ids=True`; trainer checkpoints, logs and data files are never uploaded.

The local directory is never modified: the card is generated in memory. Any failure after the local checks (no
token, HTTP error, unreachable endpoint) raises `HubPushError`, a one-line message that ends with the path of the
intact local output directory.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from pathlib import Path

__all__ = [
    "HubPushError",
    "push_unlearned_to_hub",
    "files_to_push",
    "check_output_dir",
    "IGNORE_FILE_PATTERNS",
    "IGNORE_DIR_PATTERNS",
    "WEIGHT_FILES",
]

logger = logging.getLogger(__name__)

NO_TOKEN_MESSAGE = "no Hugging Face token: run `hf auth login` or pass --token/set HF_TOKEN"

#: Any one of these is accepted as the model's weights.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
REQUIRED_FILES = ("config.json", "metrics.json", "removal_record.json", "unlearning_config.json")

#: Files never uploaded (matched against the file name and the path relative to the output directory).
#: `removed_ids.json` is the exception that `push_removed_ids=True` lifts.
IGNORE_FILE_PATTERNS = (
    "removed_ids.json",
    "ledger.json",  # ids and salts of every deletion request (hf_unlearn.ledger): never published, not even on request
    # trainer state, optimizer and logs: not part of the model
    "trainer_state.json", "training_args.bin", "optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt",
    "rng_state*.pth", "*.log", "*.tmp", "*.lock", "*.pyc", ".DS_Store", "events.out.tfevents.*",
    # data files: the forget set must never be published by accident
    "*.arrow", "*.parquet", "*.csv", "*.tsv", "*.jsonl", "*.npy", "*.npz", "*.pkl", "*.pickle",
    "*.png", "*.jpg", "*.jpeg", "*.gif", "*.bmp", "*.webp", "*.idx*-ubyte*", "*.gz", "*.zip", "*.tar",
)
#: Directories never uploaded (matched against each directory component of a path).
IGNORE_DIR_PATTERNS = (
    "checkpoint-*", ".incomplete", "runs", "logs", "wandb", "mlruns", ".git", ".cache", "__pycache__", ".ipynb_checkpoints",
    "cache", "data", "forget*", "retain*",
)


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
        "produce it with `python scripts/unlearn.py ... --output_dir {p}` (or `UnlearningTrainer.save_unlearned`), "
        "which writes the model, metrics.json, removal_record.json and unlearning_config.json (docs/FORMATS.md)"
    ).format(p=path)
    if not path.is_dir():
        raise ValueError(f"{path} is not a directory: {how}")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        missing.append("model weights (model.safetensors, or a sharded/PyTorch checkpoint)")
    if missing:
        raise ValueError(f"{path} is not a finished unlearning output directory: missing {', '.join(missing)}; {how}")
    return path


def _ignored(rel: str, push_removed_ids: bool) -> bool:
    parts = rel.split("/")
    for part in parts[:-1]:
        if any(fnmatch.fnmatch(part, pat) for pat in IGNORE_DIR_PATTERNS):
            return True
    name = parts[-1]
    if rel == "removed_ids.json" and push_removed_ids:
        return False
    if name == "README.md":
        return True  # always regenerated in memory (see push_unlearned_to_hub)
    return any(fnmatch.fnmatch(name, pat) or fnmatch.fnmatch(rel, pat) for pat in IGNORE_FILE_PATTERNS)


def files_to_push(output_dir: str | os.PathLike, *, push_removed_ids: bool = False) -> list[str]:
    """Paths (relative, POSIX) of the files `push_unlearned_to_hub` uploads from `output_dir`, besides README.md
    (which it generates)."""
    root = Path(output_dir)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        dirnames[:] = sorted(
            d for d in dirnames if not any(fnmatch.fnmatch(d, pat) for pat in IGNORE_DIR_PATTERNS)
        )
        for name in sorted(filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                continue
            if not _ignored(rel, push_removed_ids):
                out.append(rel)
    return out


def _contains_id_lists(obj) -> bool:
    from .card import ID_LIST_KEYS

    if isinstance(obj, dict):
        return any(str(k).lower() in ID_LIST_KEYS for k in obj) or any(_contains_id_lists(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_contains_id_lists(v) for v in obj)
    return False


_TEXT_SUFFIXES = {".json", ".md", ".txt", ".yaml", ".yml", ".py", ".cfg", ".ini", ".toml"}


def _check_no_raw_ids(root: Path, files: list[str], card_text: str, push_removed_ids: bool) -> None:
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
    texts = {"README.md (generated card)": card_text}
    for rel in files:
        if Path(rel).suffix.lower() in _TEXT_SUFFIXES:
            texts[rel] = (root / rel).read_text(encoding="utf-8", errors="replace")
    for name, text in texts.items():
        if any(i in text for i in distinctive):
            raise ValueError(
                f"{name} in {root} contains removed ids (from removed_ids.json); refusing to publish them. Remove "
                "them from the file, or pass push_removed_ids=True to publish the ids on purpose."
            )


# ----------------------------------------------------------------------------------------------------------------
# error messages
# ----------------------------------------------------------------------------------------------------------------
def _transport_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, OSError]
    for mod in ("httpx2", "httpx"):
        try:
            errors.append(__import__(mod).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def _describe(err: BaseException, endpoint: str) -> str:
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(err, OfflineModeIsEnabled):
        return "offline mode is enabled (HF_HUB_OFFLINE=1); unset it to push"
    if isinstance(err, HfHubHTTPError) and getattr(err, "response", None) is not None:
        status = err.response.status_code
        try:
            where = f"{err.response.request.method} {err.response.request.url}"
        except Exception:
            where = endpoint
        detail = (err.server_message or "").strip().splitlines()
        hint = {
            401: "authentication failed: check that the token is valid (`hf auth whoami`)",
            403: "permission denied: the token needs write access to this namespace",
            404: "not found: check the repo id and revision",
            409: "conflict on the Hub",
            412: "the branch moved during the push: retry",
            429: "rate limited by the Hub: retry later",
        }.get(status, "server error" if status >= 500 else "request rejected")
        return f"HTTP {status} from {where} ({hint})" + (f": {detail[0]}" if detail else "")
    first = (str(err).strip().splitlines() or [""])[0] or "no detail"
    transport = tuple(e for e in _transport_errors() if e is not OSError)
    if isinstance(err, transport):
        return f"could not reach the Hub at {endpoint} ({type(err).__name__}: {first})"
    return f"{type(err).__name__}: {first}"


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

    Returns:
        The commit URL: a `huggingface_hub.CommitInfo` (a `str` subclass; `.oid`, and `.pr_url` with `create_pr`).

    Raises:
        ValueError: `output_dir` is not a finished unlearning output, or it would publish raw ids (nothing was sent).
        HubPushError: the push failed (no token, HTTP error, unreachable endpoint); the local directory is intact.
    """
    from huggingface_hub import CommitOperationAdd, HfApi, get_token
    from huggingface_hub.utils import validate_repo_id

    from .card import model_card_from_output_dir

    root = check_output_dir(output_dir).resolve()
    if not repo_id or not isinstance(repo_id, str):
        raise ValueError("repo_id is required (namespace/name)")
    validate_repo_id(repo_id)
    if push_removed_ids and not (root / "removed_ids.json").is_file():
        raise ValueError(f"push_removed_ids=True but {root / 'removed_ids.json'} does not exist")

    files = files_to_push(root, push_removed_ids=push_removed_ids)
    card = model_card_from_output_dir(root, repo_id=repo_id, ids_published=push_removed_ids)
    card_text = str(card)
    _check_no_raw_ids(root, files, card_text, push_removed_ids)

    config = json.loads((root / "unlearning_config.json").read_text(encoding="utf-8"))
    record = json.loads((root / "removal_record.json").read_text(encoding="utf-8"))
    method = config.get("method") or "unknown"
    num_removed = record.get("num_removed")
    commitment = (record.get("commitment") or {}).get("value")
    if not commit_message:
        commit_message = f"Unlearn {num_removed if num_removed is not None else 'some'} samples with {method} (hf-unlearn)"
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
    operations += [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(root / rel)) for rel in files]

    from huggingface_hub.errors import HfHubHTTPError

    network_errors = (HfHubHTTPError,) + _transport_errors()
    try:
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        resolved = getattr(repo_url, "repo_id", None) or repo_id
        if resolved != repo_id:  # `name` -> `namespace/name`: the card's usage snippet names the full id
            repo_id = resolved
            card_text = str(model_card_from_output_dir(root, repo_id=repo_id, ids_published=push_removed_ids))
            operations[0] = CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card_text.encode("utf-8"))
        if private and not api.model_info(repo_id).private:
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
    except HubPushError:
        raise
    except network_errors as err:
        raise HubPushError(_describe(err, api.endpoint), output_dir=root, repo_id=repo_id) from err
    except ValueError as err:  # the Hub rejected the card's metadata (validate-yaml), or answered something unreadable
        raise HubPushError(f"the Hub rejected the upload: {err}", output_dir=root, repo_id=repo_id) from err
    logger.info("pushed %d files from %s to %s: %s", len(operations), root, repo_id, info)
    return info
