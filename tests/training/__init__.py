"""Tests of bpcli.training."""
