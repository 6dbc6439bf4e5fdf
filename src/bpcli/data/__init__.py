"""Samples: where they come from (inline, CSV, generators), their preparation and class names."""
