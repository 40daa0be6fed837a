"""A small in-memory, Hub-compatible HTTP server for offline tests (standard library only).

It implements the part of the Hugging Face Hub HTTP API that `huggingface_hub` 2.x uses for
`create_repo`, `create_branch`, `create_commit` / `upload_folder` / `upload_file` (regular files
only: every file is answered ``uploadMode: "regular"``, so no LFS or Xet storage is involved),
`ModelCard.push_to_hub`, `model_info` / `repo_info`, `list_repo_tree`, `list_repo_refs`, `create_pull_request` / `get_discussion_details`,
`hf_hub_download` / `snapshot_download` / `from_pretrained` and `whoami`. Spaces (`repo_type="space"`) are kept
apart from models (`hub.space("ns/name")`) and served at `/spaces/{ns}/{name}/resolve/...`, where
`evaluate.load("ns/name")` downloads a metric module.

Usage in a test::

    from hub_server import HubServer

    with HubServer() as hub:
        env = hub.env(tmp_path)            # HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_DISABLE_XET, ...
        subprocess.run([...], env={**os.environ, **env})
        # or in-process: HfApi(endpoint=hub.url, token="dummy")
        assert hub.repos["test-user/my-model"].private
        files = hub.repos["test-user/my-model"].files("main")   # {path: bytes}

`HF_ENDPOINT` is read when `huggingface_hub` is imported: either run the client in a subprocess
with `hub.env(...)`, or pass `endpoint=hub.url` explicitly (`HfApi(endpoint=...)`,
`hf_hub_download(..., endpoint=...)`).

Odd answers: `hub.misbehave_next(kind, "redirect" | "html" | "missing_keys" | "truncated" | "reset" | "hang" |
"retry_after")`.

Failure injection: `hub.fail_next_commit(status=500)` makes the next commit request fail;
`hub.fail_next("validate" | "preupload" | "create" | "commit" | "branch" | "resolve" | "info", status)` does the
same for other endpoints. Write endpoints answer 401 without an ``Authorization: Bearer <token>``
header (or with a token outside ``HubServer(tokens=...)`` when that set is given); private repos
answer 401 to anonymous reads, like the Hub.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubServer", "Repo", "Commit", "git_blob_sha1"]

DEFAULT_GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.bin filter=lfs diff=lfs merge=lfs -text\n"
)


def git_blob_sha1(content: bytes) -> str:
    """The git blob id of `content` (what the Hub reports as a regular file's oid/ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def space_key(repo_id: str) -> str:
    """Key of the Space `repo_id` in `HubServer.repos` (a model and a Space may share an id, as on the Hub)."""
    return f"spaces/{repo_id}"


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class Commit:
    sha: str
    message: str
    description: str
    ref: str  # the branch or PR ref the commit was made on
    parent: str | None
    files: dict[str, bytes]  # full snapshot of the tree after the commit
    date: str = field(default_factory=_now)


@dataclass
class Repo:
    repo_id: str
    private: bool = False
    repo_type: str = "model"
    branches: dict[str, str] = field(default_factory=dict)  # name -> commit sha
    # discussions and pull requests share their numbering, like on the Hub:
    # {"num", "title", "description", "is_pr", "date"} plus, for a PR, {"ref": "refs/pr/N", "target", "sha"}
    discussions: list[dict] = field(default_factory=list)
    commits: dict[str, Commit] = field(default_factory=dict)  # sha -> Commit
    history: list[str] = field(default_factory=list)  # commit shas in creation order
    created_at: str = field(default_factory=_now)

    # -- inspection helpers for tests --------------------------------------------------------
    @property
    def pull_requests(self) -> list[dict]:
        """The pull requests: {"num", "ref" ("refs/pr/N"), "target" (branch), "title", "sha"}."""
        return [d for d in self.discussions if d["is_pr"]]

    def open_discussion(
        self, title: str, description: str = "", pull_request: bool = False, target: str = "main"
    ) -> dict:
        entry = {
            "num": len(self.discussions) + 1,
            "title": title,
            "description": description,
            "is_pr": pull_request,
            "date": _now(),
        }
        if pull_request:
            entry.update(ref=f"refs/pr/{entry['num']}", target=target, sha=self.branches[target])
        self.discussions.append(entry)
        return entry

    def resolve(self, revision: str | None) -> str | None:
        """Commit sha for a branch name, a `refs/pr/N` ref, `refs/heads/<branch>` or a full sha."""
        revision = revision or "main"
        if revision.startswith("refs/heads/"):
            revision = revision[len("refs/heads/") :]
        if revision in self.branches:
            return self.branches[revision]
        for pr in self.pull_requests:
            if pr["ref"] == revision:
                return pr["sha"]
        if revision in self.commits:
            return revision
        return None

    def files(self, revision: str | None = "main") -> dict[str, bytes]:
        """The files ({path: content}) at `revision` (a copy)."""
        sha = self.resolve(revision)
        if sha is None:
            raise KeyError(f"revision {revision!r} not found in {self.repo_id}")
        return dict(self.commits[sha].files)

    def commit_list(self) -> list[Commit]:
        """All commits (all refs), oldest first."""
        return [self.commits[s] for s in self.history]


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_code = error_code
        self.extra = extra or {}


class HubServer:
    """In-memory Hub on 127.0.0.1 (a free port), served from a background thread."""

    def __init__(self, *, username: str = "test-user", tokens: set[str] | None = None, port: int = 0):
        self.username = username
        self.tokens = set(tokens) if tokens is not None else None
        self._port = port
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, bool]] = []  # (method, path, authenticated)
        self._lock = threading.RLock()
        self._failures: dict[str, list[int]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._counter = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> HubServer:
        if self._server is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="hub-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("HubServer is not running: call start() first")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, hf_home: str | Path, token: str | None = "hf_dummy_test_token") -> dict[str, str]:
        """Environment variables pointing `huggingface_hub`/`transformers` at this server."""
        env = {
            "HF_ENDPOINT": self.url,
            "HF_HOME": str(hf_home),
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            "HF_HUB_OFFLINE": "0",
            "TRANSFORMERS_OFFLINE": "0",
            "HF_HUB_ETAG_TIMEOUT": "5",
            "HF_HUB_DOWNLOAD_TIMEOUT": "5",
        }
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    # -- failure injection -------------------------------------------------------------------
    def fail_next(self, kind: str, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` requests of `kind` with HTTP `status`.

        kinds: "create", "validate" (validate-yaml: invalid card metadata), "branch", "preupload", "commit", "info",
        "tree", "resolve", "whoami"."""
        with self._lock:
            self._failures.setdefault(kind, []).extend([status] * times)

    def fail_next_commit(self, status: int = 500, times: int = 1) -> None:
        self.fail_next("commit", status=status, times=times)

    def misbehave_next(self, kind: str, how: str, times: int = 1, location: str | None = None) -> None:
        """Answer the next `times` requests of `kind` (see `fail_next`, plus "validate") oddly instead of serving them.

        how: "redirect" (HTTP 302 to `location`), "html" (200 with an HTML page), "missing_keys" (200 with JSON that
        lacks the expected keys), "truncated" (a Content-Length longer than the body, then the connection closes),
        "reset" (the connection is reset without an answer), "hang" (no answer until `release()` or 30 s),
        "retry_after" (HTTP 429 with `Retry-After: 3600`)."""
        if how not in _MISBEHAVIOURS:
            raise ValueError(f"unknown misbehaviour {how!r}; one of {sorted(_MISBEHAVIOURS)}")
        with self._lock:
            self.__dict__.setdefault("_misbehaviours", {}).setdefault(kind, []).extend([(how, location)] * times)

    def release(self) -> None:
        """Let "hang" answers go (they then reset the connection)."""
        self.__dict__.setdefault("_released", threading.Event()).set()

    def _maybe_fail(self, kind: str) -> None:
        with self._lock:
            pending = self._failures.get(kind)
            status = pending.pop(0) if pending else None
        if status is not None:
            raise _HTTPError(status, f"Injected failure for {kind} (test server)")

    # -- state changes (under the lock) ------------------------------------------------------
    def _new_sha(self, *parts: str) -> str:
        self._counter += 1
        return hashlib.sha1("\0".join((str(self._counter), *parts)).encode()).hexdigest()

    def _add_commit(
        self, repo: Repo, ref: str, parent: str | None, files: dict[str, bytes], message: str, description: str = ""
    ) -> Commit:
        sha = self._new_sha(repo.repo_id, ref, message, *sorted(files))
        commit = Commit(sha=sha, message=message, description=description, ref=ref, parent=parent, files=files)
        repo.commits[sha] = commit
        repo.history.append(sha)
        return commit

    def create_repo(self, repo_id: str, private: bool = False, repo_type: str = "model") -> Repo:
        """Create a repo directly (test setup helper); raises KeyError if it exists."""
        with self._lock:
            key = space_key(repo_id) if repo_type == "space" else repo_id
            if key in self.repos:
                raise KeyError(repo_id)
            repo = Repo(repo_id=key, private=private, repo_type=repo_type)
            init = self._add_commit(repo, "main", None, {".gitattributes": DEFAULT_GITATTRIBUTES}, "initial commit")
            repo.branches["main"] = init.sha
            self.repos[key] = repo
            return repo

    def space(self, repo_id: str) -> Repo:
        """The Space `repo_id` (Spaces live in `repos` under `spaces/<namespace>/<name>`, apart from models)."""
        return self.repos[space_key(repo_id)]


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer  # set on the bound subclass
    protocol_version = "HTTP/1.1"
    server_version = "hf-unlearn-test-hub/1.0"

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr logging
        pass

    # -- plumbing ----------------------------------------------------------------------------
    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
            return token or None
        return None

    def _authenticated(self) -> bool:
        token = self._token()
        if token is None:
            return False
        return self.hub.tokens is None or token in self.hub.tokens

    def _require_auth(self) -> None:
        if not self._authenticated():
            raise _HTTPError(401, "Invalid credentials in Authorization header")

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False):
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, obj, headers: dict[str, str] | None = None, head: bool = False):
        self._send(status, json.dumps(obj).encode(), headers, head=head)

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        raw_path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        body = self._read_body() if method in ("POST", "PUT", "DELETE") else b""
        with self.hub._lock:
            self.hub.requests.append((method, raw_path, self._token() is not None))
        if _misbehave(self, method, raw_path):  # switchable odd answers (HubServer.misbehave_next)
            return
        head = method == "HEAD"
        try:
            self._route(method, raw_path, query, body)
        except _HTTPError as err:
            headers = {"X-Error-Message": err.message}
            if err.error_code:
                headers["X-Error-Code"] = err.error_code
            self._json(err.status, {"error": err.message, **err.extra}, headers, head=head)
        except Exception as err:  # pragma: no cover - a bug in the test server itself
            self._json(500, {"error": f"test server error: {type(err).__name__}: {err}"}, head=head)

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- routing -----------------------------------------------------------------------------
    def _route(self, method: str, raw_path: str, query: dict, body: bytes) -> None:
        segs = [s for s in raw_path.split("/") if s != ""]  # still URL-quoted
        hub = self.hub
        if segs[:1] == ["api"]:
            rest = segs[1:]
            if rest == ["whoami-v2"] and method == "GET":
                hub._maybe_fail("whoami")
                self._require_auth()
                return self._json(
                    200,
                    {
                        "type": "user",
                        "id": "0" * 24,
                        "name": hub.username,
                        "fullname": "Test User",
                        "email": None,
                        "orgs": [],
                        "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
                    },
                )
            if rest == ["repos", "create"] and method == "POST":
                return self._create_repo(json.loads(body or b"{}"))
            if rest == ["validate-yaml"] and method == "POST":
                with hub._lock:
                    pending = hub._failures.get("validate")
                    status = pending.pop(0) if pending else None
                if status is not None:  # the Hub's answer to invalid metadata
                    return self._json(
                        status, {"errors": [{"message": "Injected metadata error (test server)"}], "warnings": []}
                    )
                return self._json(200, {"errors": [], "warnings": []})
            if len(rest) >= 3 and rest[0] in ("models", "datasets", "spaces"):
                repo_id = f"{unquote(rest[1])}/{unquote(rest[2])}"
                if rest[0] == "spaces":
                    repo_id = space_key(repo_id)
                return self._repo_api(method, repo_id, rest[3:], query, body)
            raise _HTTPError(404, f"Unknown API route {raw_path}")
        # /{ns}/{name}/resolve/{rev}/{path...}
        if len(segs) >= 5 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            repo_id = f"{unquote(segs[0])}/{unquote(segs[1])}"
            return self._resolve(method, repo_id, unquote(segs[3]), unquote("/".join(segs[4:])))
        # /spaces/{ns}/{name}/resolve/{rev}/{path...}: what evaluate.load("ns/name") downloads
        if len(segs) >= 6 and segs[0] == "spaces" and segs[3] == "resolve" and method in ("GET", "HEAD"):
            repo_id = space_key(f"{unquote(segs[1])}/{unquote(segs[2])}")
            return self._resolve(method, repo_id, unquote(segs[4]), unquote("/".join(segs[5:])))
        raise _HTTPError(404, f"Not found: {raw_path}")

    def _get_repo(self, repo_id: str, write: bool = False) -> Repo:
        repo = self.hub.repos.get(repo_id)
        if repo is None or (repo.private and not self._authenticated()):
            # The Hub answers 401 to anonymous requests and 404 to authenticated ones.
            status = 404 if self._authenticated() else 401
            raise _HTTPError(status, "Repository not found", "RepoNotFound")
        if write:
            self._require_auth()
        return repo

    @staticmethod
    def _resolve_rev(repo: Repo, revision: str) -> str:
        sha = repo.resolve(revision)
        if sha is None:
            raise _HTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    def _create_repo(self, payload: dict) -> None:
        hub = self.hub
        hub._maybe_fail("create")
        self._require_auth()
        name = payload.get("name")
        if not name:
            raise _HTTPError(400, "Missing repo name")
        namespace = payload.get("organization") or hub.username
        repo_id = f"{namespace}/{name}"
        repo_type = payload.get("type") or "model"
        if repo_type == "space" and payload.get("sdk") not in ("gradio", "docker", "static"):
            raise _HTTPError(400, "A Space needs an sdk (gradio, docker or static)")
        if "visibility" in payload:
            private = payload["visibility"] == "private"
        else:
            private = bool(payload.get("private", False))
        with hub._lock:
            if (space_key(repo_id) if repo_type == "space" else repo_id) in hub.repos:
                # The Hub answers the existing repo's url too (create_repo(exist_ok=True) reads it).
                raise _HTTPError(
                    409, f"You already created this {repo_type} repo", extra={"url": f"{hub.url}/{repo_id}"}
                )
            hub.create_repo(repo_id, private=private, repo_type=repo_type)
        self._json(
            200,
            {
                "url": f"{hub.url}/{'spaces/' if repo_type == 'space' else ''}{repo_id}",
                "name": repo_id,
                "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            },
        )

    def _repo_api(self, method: str, repo_id: str, rest: list[str], query: dict, body: bytes) -> None:
        hub = self.hub
        if not rest or rest[0] == "revision":
            if method != "GET":
                raise _HTTPError(405, "Method not allowed")
            hub._maybe_fail("info")
            with hub._lock:
                repo = self._get_repo(repo_id)
                revision = unquote("/".join(rest[1:])) if rest else "main"
                sha = self._resolve_rev(repo, revision)
                return self._json(200, self._info(repo, sha))
        action, args = rest[0], rest[1:]
        if action == "preupload" and method == "POST":
            hub._maybe_fail("preupload")
            payload = json.loads(body or b"{}")
            with hub._lock:
                repo = self._get_repo(repo_id, write=True)
                sha = self._resolve_rev(repo, unquote("/".join(args)) or "main")
                existing = repo.commits[sha].files
                files = []
                for f in payload.get("files", []):
                    entry = {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                    if f["path"] in existing:
                        entry["oid"] = git_blob_sha1(existing[f["path"]])
                    files.append(entry)
            return self._json(200, {"files": files, "commitOid": sha})
        if action == "commit" and method == "POST":
            return self._commit(repo_id, unquote("/".join(args)) or "main", query, body)
        if action == "branch" and args:
            branch = unquote("/".join(args))
            hub._maybe_fail("branch")
            with hub._lock:
                repo = self._get_repo(repo_id, write=True)
                if method == "POST":
                    payload = json.loads(body or b"{}")
                    if branch in repo.branches:
                        raise _HTTPError(409, f"Reference refs/heads/{branch} already exists")
                    start = self._resolve_rev(repo, payload.get("startingPoint") or "main")
                    repo.branches[branch] = start
                    return self._json(200, {})
                if method == "DELETE":
                    if branch not in repo.branches or branch == "main":
                        raise _HTTPError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
                    del repo.branches[branch]
                    return self._json(200, {})
        if action == "refs" and method == "GET":
            with hub._lock:
                repo = self._get_repo(repo_id)
                out = {
                    "branches": [
                        {"name": b, "ref": f"refs/heads/{b}", "targetCommit": s} for b, s in repo.branches.items()
                    ],
                    "converts": [],
                    "tags": [],
                }
                if query.get("include_prs"):
                    out["pullRequests"] = [
                        {"name": p["ref"], "ref": p["ref"], "targetCommit": p["sha"]} for p in repo.pull_requests
                    ]
            return self._json(200, out)
        if action == "tree" and method == "GET" and args:
            hub._maybe_fail("tree")
            with hub._lock:
                repo = self._get_repo(repo_id)
                sha = self._resolve_rev(repo, unquote(args[0]))
                prefix = unquote("/".join(args[1:])).strip("/")
                files = repo.commits[sha].files
            return self._json(
                200, self._tree(files, prefix, recursive=query.get("recursive") in ("1", "true", "True"))
            )
        if action == "discussions" and method == "POST" and not args:
            payload = json.loads(body or b"{}")
            with hub._lock:
                repo = self._get_repo(repo_id, write=True)
                entry = repo.open_discussion(
                    payload.get("title") or "untitled",
                    payload.get("description") or "",
                    bool(payload.get("pullRequest")),
                )
            return self._json(200, {"num": entry["num"], "url": f"{hub.url}/{repo_id}/discussions/{entry['num']}"})
        if action == "discussions" and method == "GET" and len(args) == 1:
            with hub._lock:
                repo = self._get_repo(repo_id)
                matches = [d for d in repo.discussions if str(d["num"]) == args[0]]
                if not matches:
                    raise _HTTPError(404, "Discussion not found")
                d = matches[0]
                details = {
                    "num": d["num"],
                    "title": d["title"],
                    "status": "open",
                    "createdAt": d["date"],
                    "author": {"name": hub.username},
                    "repo": {"name": repo_id, "type": repo.repo_type},
                    "isPullRequest": d["is_pr"],
                    "events": [],
                    "changes": {"base": f"refs/heads/{d.get('target', 'main')}"},
                    "filesWithConflicts": [],
                    "diff": "",
                }
            return self._json(200, details)
        if action == "settings" and method == "PUT":
            payload = json.loads(body or b"{}")
            with hub._lock:
                repo = self._get_repo(repo_id, write=True)
                if "private" in payload:
                    repo.private = bool(payload["private"])
                if "visibility" in payload:
                    repo.private = payload["visibility"] == "private"
            return self._json(200, {})
        raise _HTTPError(404, f"Unknown repo API route {'/'.join(rest)} ({method})")

    def _info(self, repo: Repo, sha: str) -> dict:
        files = repo.commits[sha].files
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id.removeprefix("spaces/") if repo.repo_type == "space" else repo.repo_id,
            "modelId": repo.repo_id,
            "author": repo.repo_id.removeprefix("spaces/").split("/")[0],
            "sha": sha,
            "private": repo.private,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "createdAt": repo.created_at,
            "lastModified": repo.commits[sha].date,
            "siblings": [{"rfilename": p} for p in sorted(files)],
        }

    @staticmethod
    def _tree(files: dict[str, bytes], prefix: str, recursive: bool) -> list[dict]:
        entries: dict[str, dict] = {}
        base = f"{prefix}/" if prefix else ""
        if prefix and not any(p.startswith(base) for p in files):
            raise _HTTPError(404, f"{prefix} does not exist", "EntryNotFound")
        for path, content in sorted(files.items()):
            if not path.startswith(base):
                continue
            rel = path[len(base) :]
            parts = rel.split("/")
            # folders on the way
            for depth in range(1, len(parts)):
                if not recursive and depth > 1:
                    break
                folder = base + "/".join(parts[:depth])
                entries.setdefault(
                    folder,
                    {"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(), "size": 0, "path": folder},
                )
            if recursive or len(parts) == 1:
                entries[path] = {"type": "file", "oid": git_blob_sha1(content), "size": len(content), "path": path}
        return list(entries.values())

    def _commit(self, repo_id: str, revision: str, query: dict, body: bytes) -> None:
        hub = self.hub
        with hub._lock:
            repo = self._get_repo(repo_id, write=True)
        hub._maybe_fail("commit")
        header: dict = {}
        additions: dict[str, bytes] = {}
        deletions: list[tuple[str, bool]] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value", {})
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise _HTTPError(400, "only base64 encoding is supported")
                additions[value["path"]] = base64.b64decode(value["content"])
            elif key in ("deletedFile", "deletedFolder"):
                deletions.append((value["path"], key == "deletedFolder"))
            elif key == "lfsFile":
                raise _HTTPError(400, "LFS files are not supported by the test server (it answers uploadMode regular)")
            else:
                raise _HTTPError(400, f"unknown commit operation {key!r}")
        if not header.get("summary"):
            raise _HTTPError(400, "missing commit summary")
        create_pr = query.get("create_pr") in ("1", "true", "True")
        with hub._lock:
            base_sha = self._resolve_rev(repo, revision)
            parent_commit = header.get("parentCommit")
            if parent_commit and parent_commit != base_sha:
                raise _HTTPError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(repo.commits[base_sha].files)
            for path, is_folder in deletions:
                if is_folder:
                    prefix = path.rstrip("/") + "/"
                    for p in [p for p in files if p.startswith(prefix)]:
                        del files[p]
                elif path in files:
                    del files[path]
                else:
                    raise _HTTPError(404, "A file with this name doesn't exist", "EntryNotFound")
            files.update(additions)
            pr_url = None
            if create_pr:
                target = revision if revision in repo.branches else "main"
                pr = repo.open_discussion(header["summary"], header.get("description") or "", True, target)
                commit = self._new_commit(repo, pr["ref"], base_sha, files, header)
                pr["sha"] = commit.sha
                pr_url = f"{hub.url}/{repo.repo_id}/discussions/{pr['num']}"
            else:
                commit = self._new_commit(repo, revision, base_sha, files, header)
                branch = revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision
                if branch in repo.branches:
                    repo.branches[branch] = commit.sha
                else:
                    for pr in repo.pull_requests:
                        if pr["ref"] == revision:
                            pr["sha"] = commit.sha
                            break
                    else:
                        raise _HTTPError(400, f"Cannot commit to {revision!r}: not a branch nor a pull request ref")
        self._json(
            200,
            {
                "commitUrl": f"{hub.url}/{repo.repo_id}/commit/{commit.sha}",
                "commitOid": commit.sha,
                "pullRequestUrl": pr_url,
                "success": True,
            },
        )

    def _new_commit(self, repo: Repo, ref: str, parent: str, files: dict[str, bytes], header: dict) -> Commit:
        return self.hub._add_commit(repo, ref, parent, files, header["summary"], header.get("description") or "")

    def _resolve(self, method: str, repo_id: str, revision: str, path: str) -> None:
        hub = self.hub
        hub._maybe_fail("resolve")
        with hub._lock:
            repo = self._get_repo(repo_id)
            sha = self._resolve_rev(repo, revision)
            files = repo.commits[sha].files
            if path not in files:
                raise _HTTPError(404, "Entry not found", "EntryNotFound")
            content = files[path]
        etag = git_blob_sha1(content)
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(content)),
            "ETag": f'"{etag}"',
            "X-Repo-Commit": sha,
            "Accept-Ranges": "bytes",
        }
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and method == "GET":
            start_s, _, end_s = rng[6:].partition("-")
            start = int(start_s or 0)
            end = int(end_s) if end_s else len(content) - 1
            part = content[start : end + 1]
            headers["Content-Length"] = str(len(part))
            headers["Content-Range"] = f"bytes {start}-{start + len(part) - 1}/{len(content)}"
            return self._send(206, part, headers)
        self._send(200, content, headers, head=(method == "HEAD"))


# -- misbehaviours: odd answers of a broken or hostile endpoint --------------------------------------------------
_MISBEHAVIOURS = {"redirect", "html", "missing_keys", "truncated", "reset", "hang", "retry_after"}


def _request_kind(method: str, raw_path: str) -> str | None:
    segs = [s for s in raw_path.split("/") if s]
    if segs[:1] != ["api"]:
        return "resolve" if len(segs) >= 5 and segs[2] == "resolve" else None
    rest = segs[1:]
    if rest == ["repos", "create"]:
        return "create"
    if rest == ["validate-yaml"]:
        return "validate"
    if rest == ["whoami-v2"]:
        return "whoami"
    if len(rest) >= 3 and rest[0] in ("models", "datasets", "spaces"):
        action = rest[3] if len(rest) > 3 else "info"
        return "info" if action == "revision" else action
    return None


def _misbehave(handler: _Handler, method: str, raw_path: str) -> bool:
    """Answer oddly if a misbehaviour is queued for this request's kind; True if it did."""
    hub = handler.hub
    kind = _request_kind(method, raw_path)
    with hub._lock:
        queue = hub.__dict__.get("_misbehaviours", {}).get(kind)
        how, location = queue.pop(0) if queue else (None, None)
    if how is None:
        return False
    handler.close_connection = True
    if how == "redirect":
        handler._send(302, b"", {"Location": location or "http://127.0.0.1:9/elsewhere"})
    elif how == "html":
        handler._send(200, b"<!doctype html><html><body><h1>Sign in</h1></body></html>", {"Content-Type": "text/html"})
    elif how == "retry_after":  # rate limited, "come back in an hour"
        handler._json(
            429, {"error": "slow down"}, {"Retry-After": "3600", "X-Error-Message": "slow down (test server)"}
        )
    elif how == "missing_keys":
        handler._json(200, {"ok": True})
    elif how == "truncated":
        handler._send(200, b'{"url": "http://127.0.0.1/', {"Content-Length": "1000"})
        handler.wfile.flush()
    else:  # "hang" (then reset) or "reset"
        if how == "hang":
            hub.__dict__.setdefault("_released", threading.Event()).wait(30)
        import struct

        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()  # linger 0: the peer gets a TCP reset
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on (for connection-refused tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":  # manual use: python tests/hub_server.py
    import time

    with HubServer() as _hub:
        print(f"test Hub listening on {_hub.url} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
