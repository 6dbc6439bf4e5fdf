"""bpcli: train small feed-forward networks and see the chain rule behind every gradient."""

__version__ = "0.1.0"
