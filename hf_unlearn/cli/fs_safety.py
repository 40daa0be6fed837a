"""Where a run may write: protected directories compared by identity, a writability probe, and the run lock.

Paths are compared by ``(st_dev, st_ino)`` of the directories themselves, not by their spelling, so a symlink, a
``..`` detour or a bind-mounted alias of the original model's directory is recognised as that directory. An
output directory that does not exist yet is judged by its nearest existing ancestor.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
import tempfile

__all__ = [
    "nearest_existing",
    "relation",
    "check_output_location",
    "probe_writable",
    "OutputDirLock",
    "check_input_file",
    "check_input_dir",
    "check_output_file",
    "LOCK_NAME",
    "read_lock",
    "lock_is_live",
    "OutputDirLocked",
]

LOCK_NAME = ".hf_unlearn.lock"


class OutputDirLocked(ValueError):
    """Another live run holds the output directory's lock."""


def nearest_existing(path: str) -> str:
    """``path`` itself when it exists, else its closest existing ancestor (absolute)."""
    path = os.path.abspath(path)
    while not os.path.lexists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _identity(path: str):
    try:
        st = os.stat(path)  # follows symlinks: the identity of what the path really names
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _identities_up(path: str) -> list[tuple[int, int]]:
    """Identities of ``path`` (or its nearest existing ancestor) and of every ancestor of its *real* location."""
    out = []
    current = os.path.realpath(nearest_existing(path))
    while True:
        ident = _identity(current)
        if ident is not None:
            out.append(ident)
        parent = os.path.dirname(current)
        if parent == current:
            return out
        current = parent


def relation(output_dir: str, protected: str) -> str | None:
    """``"same"``, ``"inside"`` (output_dir is within protected) or ``"contains"`` (protected is within output_dir)
    or ``None``. Existing directories are compared by identity; a missing output_dir by its nearest ancestor."""
    target = _identity(protected)
    if target is None:
        return None
    out_exists = os.path.exists(output_dir)
    ups = _identities_up(output_dir)
    if out_exists and ups and ups[0] == target:
        return "same"
    if target in ups:
        return "inside"
    if out_exists and _identity(output_dir) in _identities_up(protected)[1:]:
        return "contains"
    return None


def check_output_location(output_dir: str, protected: list[tuple[str, str]]) -> None:
    """Refuse (``ValueError``) an output dir that is, lies inside, or contains one of the ``(what, path)``
    protected directories; then one that is not a writable directory."""
    for what, path in protected:
        if not path or not os.path.isdir(path):
            continue
        rel = relation(output_dir, path)
        if rel is None:
            continue
        where = {"same": "is", "inside": "is inside", "contains": "contains"}[rel]
        raise ValueError(
            f"--output_dir {output_dir} {where} {what} ({os.path.realpath(path)}), which a run never writes to "
            "(not even with --overwrite_output_dir); choose an --output_dir outside it."
        )
    probe_writable(output_dir)


def _probe_directory(directory: str) -> None:
    """Create and remove a hidden file in ``directory``: raises OSError when it cannot be written."""
    fd, probe = tempfile.mkstemp(prefix=".hf_unlearn-probe-", dir=directory)
    os.close(fd)
    os.remove(probe)


def probe_writable(output_dir: str) -> None:
    """Create and remove a probe file where the output will go (the directory, or its nearest existing
    ancestor): an unwritable or file-valued ``--output_dir`` is refused before any work."""
    base = nearest_existing(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"--output_dir {output_dir} is a file, not a directory; choose a directory path.")
    if not os.path.isdir(base):
        raise ValueError(
            f"--output_dir {output_dir} cannot be created: {base} is a file, not a directory; "
            "choose another --output_dir."
        )
    try:
        _probe_directory(base)
    except OSError as e:
        raise ValueError(
            f"--output_dir {output_dir} is not writable ({os.strerror(e.errno or 0) or e} in {base}); "
            "choose a writable --output_dir."
        ) from e


# ---- file and directory arguments ----------------------------------------------------------------------------
# One check per kind of path argument, shared by every subcommand: each raises ValueError with one line naming the
# flag, the path, what is wrong with it and the fix, before any work (a subcommand turns it into `error:`, exit 2).
def _empty(flag: str, path, what: str) -> None:
    if path is None or not str(path).strip():
        raise ValueError(f"{flag} is empty ({'' if path is None else path!r}); give the path of {what}.")


def check_input_file(flag: str, path, what: str = "a file") -> None:
    """``path`` names an existing, readable regular file (not a directory)."""
    _empty(flag, path, what)
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a directory, not a file; give the path of {what}.")
    if not os.path.exists(path):
        parent = os.path.dirname(os.path.abspath(path))
        where = "" if os.path.isdir(parent) else f" (nor does its directory {parent})"
        raise ValueError(f"{flag} {path} does not exist{where}; give the path of {what}.")
    if not os.path.isfile(path):
        raise ValueError(f"{flag} {path} is not a regular file; give the path of {what}.")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise ValueError(
            f"{flag} {path} cannot be read ({e.strerror or e}); give the path of {what} that this user can read."
        ) from e


def check_input_dir(flag: str, path, what: str = "a directory") -> None:
    """``path`` names an existing, readable directory (not a file)."""
    _empty(flag, path, what)
    if not os.path.exists(path):
        raise ValueError(f"{flag} {path} does not exist; give the path of {what}.")
    if not os.path.isdir(path):
        raise ValueError(f"{flag} {path} is a file, not a directory; give the path of {what}.")
    try:
        os.listdir(path)
    except OSError as e:
        raise ValueError(
            f"{flag} {path} cannot be read ({e.strerror or e}); give the path of {what} that this user can read."
        ) from e


def check_output_file(flag: str, path, what: str = "the file to write") -> None:
    """``path`` can be written as a file: not a directory, its directory exists and is writable (probed, so a
    read-only filesystem or a root-owned location counts too), an existing file is writable. Nothing is left."""
    _empty(flag, path, what)
    if os.path.isdir(path):
        raise ValueError(
            f"{flag} {path} is a directory; give the path of {what} (e.g. {os.path.join(path, 'out.json')})."
        )
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.exists(parent):
        raise ValueError(f"{flag} {path}: its directory {parent} does not exist; create it or choose another path.")
    if not os.path.isdir(parent):
        raise ValueError(f"{flag} {path}: {parent} is a file, not a directory; choose another path.")
    try:
        if os.path.exists(path):
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))  # opened, not truncated: nothing changes yet
        else:
            _probe_directory(parent)
    except OSError as e:
        raise ValueError(
            f"{flag} {path} cannot be written ({e.strerror or e} in {parent}); choose a writable location."
        ) from e


# ---- the run lock --------------------------------------------------------------------------------------------
def read_lock(output_dir: str) -> dict | None:
    path = os.path.join(output_dir, LOCK_NAME)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable or half-written: treated as held by an unknown live run (never silently stolen)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_is_live(info: dict | None) -> bool:
    """A lock is stale only when it names this host and a pid that no longer exists (a crashed run)."""
    if info is None:
        return False
    if not info or info.get("hostname") != socket.gethostname():
        return bool(info is not None)
    try:
        return _pid_alive(int(info["pid"]))
    except (KeyError, TypeError, ValueError):
        return True


def _describe(info: dict, output_dir: str) -> str:
    who = (
        f"pid {info.get('pid')} on {info.get('hostname')}, started {info.get('started')}"
        if info
        else "an unreadable lock"
    )
    return (
        f"another run is writing to --output_dir {output_dir} ({who}); wait for it to finish or choose another "
        f"--output_dir (if no such run exists, delete {os.path.join(output_dir, LOCK_NAME)})."
    )


def check_not_locked(output_dir: str) -> None:
    """Refuse early (before any loading) when a live run holds ``output_dir``."""
    info = read_lock(output_dir)
    if lock_is_live(info):
        raise OutputDirLocked(_describe(info, output_dir))


@contextlib.contextmanager
def _takeover_guard(directory: str):
    """An exclusive ``flock`` on the directory itself, held while a stale lock is judged and replaced: the kernel
    drops it when its process dies, so it can never go stale. Yields False where the filesystem has no ``flock``
    (then a stale lock is not replaced automatically)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield False
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class OutputDirLock:
    """``with OutputDirLock(dir):`` holds ``dir/.hf_unlearn.lock`` (pid, hostname, start time) for the run.

    Created atomically (``O_EXCL``, under an exclusive ``flock`` of the directory, with its content complete before
    the guard is let go); a stale lock (its pid is gone on this host) is judged and replaced under that same guard,
    so of several processes that find the same stale lock exactly one takes it over (checking and removing are one
    step). Removed on exit, including on errors and Ctrl-C, and only while it is still this run's file.
    ``created_dir`` tells whether the directory was made for this run.
    """

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self.path = os.path.join(output_dir, LOCK_NAME)
        self.created_dir = False
        self.held = False
        self._identity = None

    def acquire(self) -> OutputDirLock:
        if not os.path.isdir(self.output_dir):
            os.makedirs(self.output_dir, exist_ok=True)
            self.created_dir = True
        info = {
            "pid": os.getpid(),
            "hostname": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        with _takeover_guard(self.output_dir) as guarded:
            for _ in range(2):
                try:
                    fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    held = read_lock(self.output_dir)
                    if lock_is_live(held) or not guarded:
                        raise OutputDirLocked(_describe(held or {}, self.output_dir)) from None
                    try:
                        os.remove(self.path)  # stale (its run crashed), judged and removed under the guard
                    except FileNotFoundError:
                        pass
                    continue
                with os.fdopen(fd, "w") as f:
                    json.dump(info, f)
                    f.flush()
                    self._identity = os.fstat(f.fileno()).st_ino
                self.held = True
                return self
        raise OutputDirLocked(_describe(read_lock(self.output_dir) or {}, self.output_dir))

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        try:
            if os.stat(self.path).st_ino == self._identity:  # never another run's lock (ours deleted by hand)
                os.remove(self.path)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
        if self.created_dir:
            try:
                os.rmdir(self.output_dir)  # only if nothing else was written: a failed first run leaves no trace
            except OSError:
                pass

    def __enter__(self) -> OutputDirLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
