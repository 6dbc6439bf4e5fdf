"""matplotlib figures and animations of runs."""
