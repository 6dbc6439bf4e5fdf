"""Tests of bpcli.plots."""
