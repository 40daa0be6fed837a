"""Above the core: model cards, the Hub push and its guard, the output directory, provenance and recomputation. Imports nothing from the CLI or the benchmark."""
