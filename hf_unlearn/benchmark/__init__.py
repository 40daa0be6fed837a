"""The benchmark: the LoTUS paper's protocol on offline data, every registered method side by side (`hf-unlearn benchmark`). The top layer."""
