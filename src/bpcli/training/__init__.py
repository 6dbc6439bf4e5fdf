"""Training: the epoch loop, the optimisers' updates and the training results."""
