"""Gradio widget for the `mia` metric (Hugging Face Space entry point)."""

from pathlib import Path

import evaluate
from evaluate.utils import launch_gradio_widget

# Load the module script that sits next to this file: works offline and inside a Space,
# where a bare evaluate.load("mia") would look the name up on the Hub.
module = evaluate.load(str(Path(__file__).resolve().with_name("mia.py")))
launch_gradio_widget(module)
