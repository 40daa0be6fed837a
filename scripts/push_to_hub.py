#!/usr/bin/env python
"""Publish an unlearning output directory to the Hugging Face Hub (model, card, metrics, removal record).

    python scripts/push_to_hub.py --output_dir outputs/lotus-digits --repo_id me/vit-digits-unlearned [--private]
        [--revision BRANCH] [--create_pr] [--token TOKEN] [--push_removed_ids] [--commit_message MSG]
        [--hub_timeout SECONDS]

The same as `hf-unlearn push`: the flags and the logic live in hf_unlearn/cli/push.py. On failure the script prints
a one-line error (the local output directory is never modified) and exits with status 1.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # a source checkout, uninstalled

from hf_unlearn.cli.push import PushArguments, main  # noqa: E402,F401  (PushArguments: kept importable from here)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="scripts/push_to_hub.py"))
