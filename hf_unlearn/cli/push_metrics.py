"""``hf-unlearn push-metrics``: publish the metric modules (rf_jsd, jsd, mia) as ``evaluate`` Spaces.

``evaluate.load("ORG/rf_jsd")`` downloads ``rf_jsd.py`` from the Space ``ORG/rf_jsd``
(``{HF_ENDPOINT}/spaces/ORG/rf_jsd/resolve/main/rf_jsd.py``). A bare ``evaluate.load("rf_jsd")`` looks in the
Space ``evaluate-metric/rf_jsd``, which is not ours: after pushing, load ``"ORG/rf_jsd"``, or offline
``evaluate.load(hf_unlearn.metric_path("rf_jsd"))``. Each Space holds the module file, its README metric card
(YAML front matter: ``sdk: gradio``, ``app_file: app.py``), ``app.py`` (the Gradio widget) and ``requirements.txt``.

    hf-unlearn push-metrics --namespace my-org [--private] [--metrics rf_jsd mia] [--token T] [--endpoint URL]
"""

from __future__ import annotations

import argparse
import re
import sys

from ..evaluation.metric_modules import METRIC_NAMES, metric_path

__all__ = ["SPACE_FILES", "push_metric_spaces", "main"]

#: What a metric Space holds besides ``<name>.py`` (nothing else of the folder, e.g. ``__pycache__``, is uploaded).
SPACE_FILES = ("README.md", "app.py", "requirements.txt")

_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")


class PushMetricsError(RuntimeError):
    """A metric Space could not be created or uploaded (one line, names the Space)."""


def push_metric_spaces(
    namespace: str,
    *,
    private: bool = False,
    names: list[str] | tuple[str, ...] = METRIC_NAMES,
    token: str | None = None,
    endpoint: str | None = None,
    hub_timeout: float | None = None,
) -> dict[str, str]:
    """Create (or update) the Space ``namespace/<name>`` for each metric and upload its files; ``{name: url}``.

    Checks everything (namespace, names, local files, timeout) before the first request. Every request has a
    timeout (``hub_timeout``, else ``$HF_UNLEARN_HUB_TIMEOUT``, else 60 s) and is sent as a push's are
    (:func:`hf_unlearn.publishing.hub_guard.hub_session`: no redirects followed, no retry). Raises ``ValueError`` for bad
    input and :class:`PushMetricsError` for a failure on the Hub.
    """
    from huggingface_hub import HfApi

    from ..publishing.hub_errors import describe_hub_error, hub_network_errors
    from ..publishing.hub_guard import hub_session, resolve_hub_timeout

    if not namespace or not _NAMESPACE_RE.match(namespace) or "--" in namespace or ".." in namespace:
        raise ValueError(
            f"--namespace {namespace!r} is not a Hub user or organisation name "
            "(letters, digits, '-', '_', '.'; e.g. --namespace my-org)."
        )
    unknown = [n for n in names if n not in METRIC_NAMES]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; choose from {', '.join(METRIC_NAMES)}.")
    timeout = resolve_hub_timeout(hub_timeout)
    folders = {name: metric_path(name) for name in names}
    api = HfApi(endpoint=endpoint, token=token, library_name="hf-unlearn")
    urls = {}
    with hub_session(timeout) as state:
        for name, folder in folders.items():
            repo_id = f"{namespace}/{name}"
            try:
                api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
                info = api.upload_folder(
                    folder_path=folder,
                    repo_id=repo_id,
                    repo_type="space",
                    allow_patterns=[f"{name}.py", *SPACE_FILES],
                    commit_message=f"Upload the {name} evaluate module (hf-unlearn)",
                )
            except hub_network_errors() as e:  # HTTP errors, timeouts, broken connections: one line naming the Space
                raise PushMetricsError(
                    f"pushing the Space {repo_id} failed: "
                    f"{describe_hub_error(e, api.endpoint, state.get('last'), timeout)}"
                ) from e
            except Exception as e:
                first = (str(e).splitlines() or [""])[0]
                raise PushMetricsError(f"pushing the Space {repo_id} failed ({type(e).__name__}: {first})") from e
            urls[name] = str(info)
    return urls


def main(argv: list[str] | None = None, prog: str = "hf-unlearn push-metrics") -> int:
    from .args import OneLineParser

    parser = OneLineParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--namespace", required=True, help="Hub user or organisation that will own the Spaces.")
    parser.add_argument("--private", action="store_true", help="Create the Spaces private.")
    parser.add_argument("--metrics", nargs="+", default=list(METRIC_NAMES), help="Which modules to publish.")
    parser.add_argument(
        "--token", default=None, help="Hub token with write access (default: HF_TOKEN or `hf auth login`)."
    )
    parser.add_argument(
        "--endpoint", default=None, help="Hub endpoint (default: HF_ENDPOINT or https://huggingface.co)."
    )
    parser.add_argument(
        "--hub_timeout",
        default=None,
        help="Seconds each Hub request may take to connect and to answer (default: $HF_UNLEARN_HUB_TIMEOUT, else 60).",
    )
    args = parser.parse_args(argv)
    try:
        urls = push_metric_spaces(
            args.namespace,
            private=args.private,
            names=args.metrics,
            token=args.token,
            endpoint=args.endpoint,
            hub_timeout=args.hub_timeout,
        )
    except (ValueError, PushMetricsError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2 if isinstance(e, ValueError) else 1
    for name in urls:
        print(f'pushed {args.namespace}/{name}: evaluate.load("{args.namespace}/{name}")')
    return 0
