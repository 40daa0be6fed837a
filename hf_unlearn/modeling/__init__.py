"""The one model-family adapter: loading, calling, saving and re-initialising Hugging Face and timm classifiers."""
