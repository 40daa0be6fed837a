"""Unlearning metrics computed once from streamed predictions, and the table of every metric's facts."""
