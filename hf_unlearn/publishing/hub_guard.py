"""What may leave the machine on a Hub push, and how the push talks to the Hub.

Used by `hf_unlearn.publishing.hub.push_unlearned_to_hub` (and so by `scripts/push_to_hub.py`, `unlearn.py --push_to_hub` and
`UnlearningTrainer.push_to_hub`):

- `plan_upload(root)`: the explicit allowlist of files a push uploads (the run's manifest, `unlearning_config.json`'s
  `files`, narrowed by `ALLOW_PATTERNS`); everything else in the directory is skipped and named in one warning.
- `public_name(path_or_id)`: what published files record for a model or dataset: the Hub id, or a local directory's
  base name (never an absolute local path).
- `find_local_path(texts, paths)`: the push-time check that no uploaded text names a local path.
- `check_repo_id(repo_id)`: a repo id the Hub accepts, checked before any work.
- `hub_session(timeout)`: every Hub request of the push with a connect/read/write timeout, without following
  redirects; the previous `huggingface_hub` client factory is restored afterwards.
"""

from __future__ import annotations

import json
import math
import os
import re
from contextlib import contextmanager
from pathlib import Path

from ..records.naming import is_local_name, public_name  # noqa: F401  (public_name lives in the core; re-exported)

__all__ = [
    "ALLOW_PATTERNS",
    "MANIFEST_KEY",
    "DEFAULT_HUB_TIMEOUT",
    "HUB_TIMEOUT_ENV",
    "HubRedirectError",
    "HubRetryError",
    "HubStatusError",
    "LocalCheckError",
    "check_repo_id",
    "find_local_path",
    "hub_session",
    "active_session",
    "unreachable_cause",
    "local_path_variants",
    "open_no_follow",
    "plan_upload",
    "public_name",
    "resolve_hub_timeout",
]

#: The files a push may upload (top level of the output directory only; `huggingface_hub.utils.filter_repo_objects`
#: patterns). README.md is not among them: the card is always generated at push time.
ALLOW_PATTERNS = (
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*-of-*.safetensors",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "pytorch_model-*-of-*.bin",
    "preprocessor_config.json",
    "processor_config.json",
    "image_processor_config.json",
    "metrics.json",
    "removal_record.json",
    "unlearning_config.json",
)
IDS_FILE = "removed_ids.json"
#: `unlearning_config.json`'s list of the files the run wrote (`hf_unlearn.publishing.output.finalize_output_dir`).
MANIFEST_KEY = "files"
_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin")

DEFAULT_HUB_TIMEOUT = 60.0
HUB_TIMEOUT_ENV = "HF_UNLEARN_HUB_TIMEOUT"

REPO_ID_FIX = (
    "use `namespace/name` or a bare `name` made of letters, digits, '-', '_' and '.', at most 96 "
    "characters, not starting or ending with '-' or '.', without '--' or '..'"
)


# ----------------------------------------------------------------------------------------------------------------
# repo ids and timeouts
# ----------------------------------------------------------------------------------------------------------------
def check_repo_id(repo_id) -> str:
    """Return `repo_id` if the Hub accepts it (`huggingface_hub.utils.validate_repo_id`, one `/` at most, no `..`,
    at most 96 characters); else raise ValueError naming the id and the fix."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ValueError(f"the Hub repo id is empty ({repo_id!r}); {REPO_ID_FIX}")
    shown = repr(repo_id if len(repo_id) <= 120 else repo_id[:117] + "...")
    if repo_id.count("/") > 1 or repo_id.startswith("/") or repo_id.endswith("/"):
        raise ValueError(f"invalid Hub repo id {shown}: at most one '/' (namespace/name); {REPO_ID_FIX}")
    if ".." in repo_id or "--" in repo_id:
        raise ValueError(f"invalid Hub repo id {shown}: '..' and '--' are not allowed; {REPO_ID_FIX}")
    if len(repo_id) > 96 or any(len(part) > 96 for part in repo_id.split("/")):
        raise ValueError(f"invalid Hub repo id {shown}: longer than 96 characters; {REPO_ID_FIX}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"invalid Hub repo id {shown}; {REPO_ID_FIX}") from err
    return repo_id


def resolve_hub_timeout(value=None) -> float:
    """Seconds each Hub request may take to connect and to answer: `value`, else `$HF_UNLEARN_HUB_TIMEOUT`, else 60.
    Raises ValueError unless it is a positive, finite number."""
    source = "hub_timeout"
    if value is None:
        value, source = os.environ.get(HUB_TIMEOUT_ENV), HUB_TIMEOUT_ENV
        if value is None or str(value).strip() == "":
            return DEFAULT_HUB_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(
            f"{source} must be a positive number of seconds, got {value!r}; e.g. --hub_timeout 60 "
            f"(or {HUB_TIMEOUT_ENV}=60)"
        )
    return seconds


# ----------------------------------------------------------------------------------------------------------------
# local paths
# ----------------------------------------------------------------------------------------------------------------
_is_local = is_local_name  # moved to hf_unlearn.records.naming (a core module); re-exported here


def local_path_variants(paths) -> set[str]:
    """Each path as given (if absolute), absolute and with symlinks resolved; '/' and empty ones dropped."""
    out: set[str] = set()
    for p in paths:
        if not p:
            continue
        p = os.path.expanduser(os.fspath(p))
        for variant in (p if os.path.isabs(p) else None, os.path.abspath(p), os.path.realpath(p)):
            if variant:
                variant = variant.rstrip("/")
                if len(variant) > 1:
                    out.add(variant)
    return out


def default_local_paths(output_dir) -> list[str]:
    """Paths no published file may name: the output directory, the home directory and hf-unlearn's cache."""
    paths = [os.fspath(output_dir), os.environ.get("HOME"), os.path.expanduser("~")]
    try:
        from ..data.builtin import cache_dir

        paths.append(cache_dir())
    except Exception:  # pragma: no cover - builtin ships with the package
        pass
    return [p for p in paths if p]


# An absolute path inside text: not preceded by a URL/path character (so "https://host/x" does not count).
_ABS_PATH = re.compile(r"(?<![\w.~/:%-])(/[^\s\"'<>|`*?,;(){}\[\]\\]+)")


def find_local_path(texts: dict[str, str], paths) -> tuple[str, str] | None:
    """(file name, path) of the first text naming one of `paths` (or an existing absolute path of two or more
    components on this machine), else None."""
    variants = sorted(local_path_variants(paths), key=len, reverse=True)
    patterns = []
    for v in variants:
        escaped = {v, json.dumps(v)[1:-1]}  # as written in JSON too (escaped non-ASCII)
        patterns += [(v, re.compile(r"(?<![\w.~/-])" + re.escape(e) + r"(?![\w.-])")) for e in escaped]
    for name, text in texts.items():
        for v, pattern in patterns:
            if pattern.search(text):
                return name, v
        for match in _ABS_PATH.finditer(text):
            candidate = match.group(1).rstrip(".:")
            if candidate.count("/") >= 2 and os.path.exists(candidate):
                return name, candidate
    return None


# ----------------------------------------------------------------------------------------------------------------
# the upload allowlist
# ----------------------------------------------------------------------------------------------------------------
def _manifest(root: Path) -> list[str] | None:
    try:
        config = json.loads((root / "unlearning_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = config.get(MANIFEST_KEY) if isinstance(config, dict) else None
    if files is None:
        return None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ValueError(
            f"{root / 'unlearning_config.json'} has a malformed '{MANIFEST_KEY}' list (expected file "
            "names); regenerate the output with scripts/unlearn.py"
        )
    return files


def plan_upload(root: str | os.PathLike, *, push_removed_ids: bool = False) -> tuple[list[str], list[str]]:
    """(files to upload, entries skipped) for the output directory `root`, both sorted.

    Uploaded: top-level regular files that match `ALLOW_PATTERNS` and, when `unlearning_config.json` lists the files
    the run wrote, are on that list; `removed_ids.json` only with `push_removed_ids`; PyTorch pickles only when no
    safetensors weights are there. Everything else (other files, every folder: skipped names end with '/') is skipped.
    README.md (the push generates it) and a withheld removed_ids.json are in neither list. Raises ValueError if an allowlisted name is a symbolic link (it is
    never followed) or is not a regular file."""
    from huggingface_hub.utils import filter_repo_objects

    root = Path(root)
    manifest = _manifest(root)
    patterns = list(ALLOW_PATTERNS) + ([IDS_FILE] if push_removed_ids else [])
    entries = sorted(os.scandir(root), key=lambda e: e.name)
    names = [e.name for e in entries]
    allowed = set(filter_repo_objects(names, allow_patterns=patterns))
    if manifest is not None:
        allowed &= set(manifest) | ({IDS_FILE} if push_removed_ids else set())
    if any(n in allowed for n in ("model.safetensors", "model.safetensors.index.json")):
        allowed -= set(filter_repo_objects(names, allow_patterns=list(_PICKLE_WEIGHTS)))
    files, skipped = [], []
    for entry in entries:
        if entry.name in ("README.md", IDS_FILE) and entry.name not in allowed:
            continue  # generated at push time / withheld by design (push_removed_ids): not worth a warning
        if entry.name in allowed:
            if entry.is_symlink():
                target = os.readlink(entry.path)
                raise ValueError(
                    f"{entry.path} is a symbolic link (to {target}); a push never follows links: replace it with "
                    "the real file written by the run (or remove it)"
                )
            if not entry.is_file(follow_symlinks=False):
                raise ValueError(f"{entry.path} is not a regular file; remove it or regenerate the output directory")
            files.append(entry.name)
        else:
            skipped.append(entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""))
    return files, skipped


def open_no_follow(path: str | os.PathLike):
    """Open a file for reading, refusing (ValueError) if it is a symbolic link now: closes the window between
    `plan_upload`'s check and the upload."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as err:
        if os.path.islink(path):
            raise ValueError(f"{path} became a symbolic link during the push; a push never follows links") from err
        raise ValueError(f"cannot read {path} ({err.strerror}); the output directory changed during the push") from err
    return os.fdopen(fd, "rb")


def read_no_follow(path: str | os.PathLike) -> bytes:
    with open_no_follow(path) as f:
        return f.read()


# ----------------------------------------------------------------------------------------------------------------
# the HTTP client used during a push
# ----------------------------------------------------------------------------------------------------------------
class LocalCheckError(ValueError):
    """A local check (raw ids, local paths) refused the upload; nothing was committed."""


class HubRedirectError(RuntimeError):
    """The Hub answered a redirect; a push does not follow redirects (the token and the files stay put)."""

    def __init__(self, method: str, url: str, status: int, location: str | None):
        self.method, self.url, self.status, self.location = method, url, status, location
        super().__init__(f"HTTP {status} redirect from {method} {url} to {location or '(no location)'}")


class HubStatusError(RuntimeError):
    """An answer huggingface_hub would retry after sleeping (429, 5xx: `Retry-After` seconds, unbounded); a push fails
    fast instead (nothing is committed, the user reruns it)."""

    def __init__(self, response):
        request = response.request
        self.status = response.status_code
        self.where = f"{request.method} {request.url}"
        self.server_message = response.headers.get("x-error-message") or response.reason_phrase
        super().__init__(f"HTTP {self.status} from {self.where}")


class HubRetryError(RuntimeError):
    """huggingface_hub was about to retry a request whose exchange failed (timeout, reset, truncated answer: its
    back-off sleeps 1+2+4+8+8 s over 5 retries); a push fails fast instead."""

    def __init__(self, where: str, cause: str | None):
        self.where, self.cause = where, cause
        super().__init__(f"no complete answer from {where}" + (f" ({cause})" if cause else ""))


#: The statuses huggingface_hub retries with back-off (utils._http._DEFAULT_RETRY_ON_STATUS_CODES).
RETRIED_STATUSES = (408, 429, 500, 502, 503, 504)


def _httpx():
    try:
        import httpx2 as httpx  # what huggingface_hub 2.x uses
    except ImportError:  # pragma: no cover - older huggingface_hub
        import httpx
    return httpx


@contextmanager
def hub_session(timeout: float, *, follow_redirects: bool = False):
    """Make every `huggingface_hub` request inside the block use a client with `timeout` seconds to connect, send
    and read (also for requests that name their own timeout, e.g. a download's 10 s `etag_timeout`: `--hub_timeout`
    decides), that does not follow redirects (`HubRedirectError`; `follow_redirects=True` for read-only sessions,
    whose downloads the Hub redirects to its file storage) and does not wait to retry a 408/429/5xx answer
    (`HubStatusError`: a hostile `Retry-After` would otherwise make the push sleep for as long as it says) nor,
    after its first 1 s back-off, an exchange that failed (`HubRetryError`). Yields a dict whose "last" is the last request
    ("METHOD url"), to name the endpoint in errors. The previous client factory is restored on exit.

    The client factory is process-global in huggingface_hub: another thread using it during the push shares it."""
    import logging

    from huggingface_hub.utils import _http

    httpx = _httpx()
    previous = getattr(_http, "_GLOBAL_CLIENT_FACTORY", None) or _http.default_client_factory
    state: dict[str, str] = {}
    bounds = httpx.Timeout(timeout).as_dict()

    class CaptureRetries(logging.Filter):
        """huggingface_hub's back-off logs "'<error>' thrown while requesting <METHOD> <url>" before it retries:
        kept (for the error message) instead of printed; its "Retrying in" lines are dropped too."""

        def filter(self, record):
            message = record.getMessage()
            if " thrown while requesting " in message:
                state["failed"] = message
                return False
            return not message.startswith("Retrying in ")

    def remember(request):
        where = f"{request.method} {str(request.url).split('?')[0]}"
        failed = state.get("failed", "")
        if failed.endswith(f" thrown while requesting {where}"):  # the back-off is retrying this very request
            cause = failed[: -len(f" thrown while requesting {where}")].strip("'") or None
            raise HubRetryError(f"{request.method} {request.url}", cause)
        state.pop("failed", None)
        state["last"] = f"{request.method} {request.url}"
        request.extensions["timeout"] = bounds  # a per-request timeout (or None) never outlasts --hub_timeout

    def refuse_redirects(response):
        if not follow_redirects and (response.is_redirect or 300 <= response.status_code < 400):
            request = response.request
            raise HubRedirectError(
                request.method, str(request.url), response.status_code, response.headers.get("location")
            )
        if response.status_code in RETRIED_STATUSES:  # raised here, the back-off (and its sleep) never starts
            raise HubStatusError(response)

    def factory():
        hooks = [h for h in (getattr(_http, "hf_request_event_hook", None),) if h is not None]
        return httpx.Client(
            event_hooks={"request": hooks + [remember], "response": [refuse_redirects]},
            follow_redirects=follow_redirects,
            timeout=httpx.Timeout(timeout),
        )

    capture = CaptureRetries()
    http_logger = logging.getLogger(_http.__name__)
    http_logger.addFilter(capture)
    _http.set_client_factory(factory)
    state["timeout"] = timeout
    _ACTIVE.append(state)
    try:
        yield state
    finally:
        _ACTIVE.remove(state)
        _http.set_client_factory(previous)
        http_logger.removeFilter(capture)


_ACTIVE: list[dict] = []


def active_session() -> dict:
    """The innermost open `hub_session`'s state ("last" request, "timeout"), or {} outside one: lets code deep in a
    subcommand name the request and the timeout in a one-line error."""
    return _ACTIVE[-1] if _ACTIVE else {}


def unreachable_cause(err: BaseException) -> BaseException | None:
    """The exception in `err`'s cause chain that says the Hub did not answer in full (a timeout, a refused or broken
    connection, a refused retry or 429/5xx, a redirect), or None: huggingface_hub wraps these (e.g. in
    `LocalEntryNotFoundError`) when a download fails."""
    transport = (_httpx().HTTPError, TimeoutError, ConnectionError, HubRedirectError, HubStatusError, HubRetryError)
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        status = getattr(getattr(err, "response", None), "status_code", None)
        if isinstance(status, int) and 400 <= status < 500 and status not in (408, 429):
            return None  # the Hub answered (not found, unauthorised, ...): bad input, not an unreachable Hub
        if isinstance(err, transport):
            return err
        err = err.__cause__ or err.__context__
    return None
