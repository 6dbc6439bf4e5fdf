"""Reading a network or a run: show, dot, inspect, compare, evaluate, predict, trajectories."""
