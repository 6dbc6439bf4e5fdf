"""The maths: activations, losses, formulas, the network and the one engine (forward, backward)."""
