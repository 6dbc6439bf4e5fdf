"""A YAML config to a validated NetConfig: the loader, the checker and its sections."""
