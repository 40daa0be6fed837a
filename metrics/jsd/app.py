"""Gradio widget for the `jsd` metric (Hugging Face Space entry point)."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

# Load the module script that sits next to this file: works offline and inside a Space,
# where a bare evaluate.load("jsd") would look the name up on the Hub.
module = evaluate.load(str(Path(__file__).resolve().with_name("jsd.py")))
launch_gradio_widget(module)
