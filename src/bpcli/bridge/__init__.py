"""The bridge to PyTorch and plain numpy: export, import and the check against torch."""
