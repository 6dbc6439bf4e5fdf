"""Tests of bpcli.explain."""
