"""The installed versions of hf-unlearn and the libraries a run depends on (recorded in every run record)."""

from __future__ import annotations

__all__ = ["library_versions", "VERSIONED_PACKAGES"]

VERSIONED_PACKAGES = (
    "hf-unlearn",
    "torch",
    "transformers",
    "datasets",
    "accelerate",
    "evaluate",
    "huggingface-hub",
    "timm",
)


def library_versions() -> dict[str, str]:
    """``{distribution name: version}`` of each installed package of ``VERSIONED_PACKAGES`` (missing ones left out)."""
    import importlib.metadata as md

    versions = {}
    for pkg in VERSIONED_PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return versions
