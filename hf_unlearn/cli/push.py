"""``hf-unlearn push`` (and ``scripts/push_to_hub.py``): publish an unlearning output directory to the Hub.

    hf-unlearn push --output_dir outputs/lotus-digits --repo_id me/vit-digits-unlearned [--private]
        [--revision BRANCH] [--create_pr] [--token TOKEN] [--push_removed_ids] [--commit_message MSG]
        [--hub_timeout SECONDS]

The raw removed ids (removed_ids.json) are only uploaded with --push_removed_ids. On failure it prints a one-line
error (the local output directory is never modified) and exits with status 1. The upload itself is
:func:`hf_unlearn.publishing.hub.push_unlearned_to_hub`; this module only parses the flags.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

__all__ = ["PushArguments", "main"]


@dataclass
class PushArguments:
    output_dir: str = field(metadata={"help": "The unlearning output directory (hf-unlearn unlearn --output_dir)."})
    repo_id: str = field(metadata={"help": "The Hub repo to push to: namespace/name (created if missing)."})
    private: bool = field(default=False, metadata={"help": "Create the repo private."})
    revision: str | None = field(
        default=None, metadata={"help": "Branch to push to (created from main if missing), or an existing refs/pr/N."}
    )
    create_pr: bool = field(default=False, metadata={"help": "Open a pull request instead of pushing to the branch."})
    token: str | None = field(
        default=None, metadata={"help": "Hub token with write access (default: HF_TOKEN or `hf auth login`)."}
    )
    push_removed_ids: bool = field(
        default=False,
        metadata={"help": "Also publish removed_ids.json, the raw removed ids (off: only counts and a commitment)."},
    )
    commit_message: str | None = field(default=None, metadata={"help": "Commit message."})
    endpoint: str | None = field(
        default=None, metadata={"help": "Hub endpoint (default: HF_ENDPOINT or https://huggingface.co)."}
    )
    hub_timeout: float | None = field(
        default=None,
        metadata={
            "help": "Seconds each Hub request may take to connect and to answer (default: "
            "$HF_UNLEARN_HUB_TIMEOUT, else 60)."
        },
    )


def main(argv: list[str] | None = None, prog: str = "hf-unlearn push") -> int:
    from transformers import HfArgumentParser

    from ..publishing.hub import HubPushError, check_repo_id, push_unlearned_to_hub
    from .args import one_line_errors

    parser = one_line_errors(HfArgumentParser(PushArguments, prog=prog, description=__doc__.split("\n\n")[0]))
    try:
        (args,) = parser.parse_args_into_dataclasses(args=argv, look_for_args_file=False)
    except ValueError as err:  # flags the parser does not know
        parser.error(str(err))

    from .fs_safety import check_input_dir

    try:  # before anything is read or sent
        check_input_dir(
            "--output_dir", args.output_dir, "a finished output directory (hf-unlearn unlearn --output_dir)"
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        check_repo_id(args.repo_id)  # before anything is read or sent
        info = push_unlearned_to_hub(
            args.output_dir,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            create_pr=args.create_pr,
            token=args.token,
            push_removed_ids=args.push_removed_ids,
            commit_message=args.commit_message,
            endpoint=args.endpoint,
            hub_timeout=args.hub_timeout,
        )
    except (HubPushError, ValueError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    pr_url = getattr(info, "pr_url", None)
    print(f"pull request: {pr_url}" if pr_url else f"pushed: {info}")
    return 0
