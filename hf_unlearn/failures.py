"""One line for an unexpected failure: disk and permission problems name the file, whose location it is (the output,
hf-unlearn's cache, a Hugging Face cache) and the setting that moves it. Every entry point prints failures this way."""

from __future__ import annotations

import errno
import os

__all__ = ["describe_failure", "first_line"]


def first_line(e: BaseException) -> str:
    """The first line of an exception's message ("" when it has none)."""
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def describe_failure(e: BaseException) -> str:
    """One line for an unexpected failure; disk and permission problems name the file and the fix."""
    # safetensors and torch.save report a full disk in their own exception types, with the OS message inside
    filename = getattr(e, "filename", None)
    if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or any(
        s in str(e) for s in ("No space left on device", "StorageFull")
    ):
        what, setting = _whose_location(filename)
        where = f"{filename} ({what})" if filename and what != "the output" else filename or what
        return (
            f"no space left on the device while writing {where}; free some disk space (or {setting} on "
            "another disk) and re-run. Nothing was presented as finished."
        )
    if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        what, setting = _whose_location(filename)
        writable = setting.replace("choose an --output_dir", "choose a writable --output_dir").replace(
            " to a directory", " to a writable directory"
        )
        return f"cannot write {filename or what} ({e.strerror}); {writable} and re-run. Nothing was presented as finished."
    return f"{type(e).__name__}: {first_line(e)}" if first_line(e) else type(e).__name__


def _whose_location(filename) -> tuple[str, str]:
    """``(what, setting to change)`` for a path that could not be written: hf-unlearn's cache (``HF_UNLEARN_CACHE``), the Hugging
    Face cache (``HF_HOME`` and the variables under it), else the output (``--output_dir``)."""

    def inside(path, root) -> bool:
        if not path or not root:
            return False
        path, root = os.path.realpath(os.fspath(path)), os.path.realpath(os.fspath(root))
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    from .data.builtin import cache_dir

    if inside(filename, cache_dir()):
        return (
            f"the hf-unlearn cache, {cache_dir()}",
            "set HF_UNLEARN_CACHE (the cache of trained originals) to a directory",
        )
    try:
        import huggingface_hub.constants as hub_constants

        caches = [("HF_HUB_CACHE", hub_constants.HF_HUB_CACHE), ("HF_HOME", hub_constants.HF_HOME)]
    except Exception:  # pragma: no cover - huggingface_hub ships with transformers
        caches = []
    datasets_cache = os.environ.get("HF_DATASETS_CACHE")
    caches = ([("HF_DATASETS_CACHE", datasets_cache)] if datasets_cache else []) + caches
    for variable, root in caches:
        if inside(filename, root):
            return f"the Hugging Face cache, {root}", f"set {variable} (or HF_HOME) to a directory"
    return "the output", "choose an --output_dir"
