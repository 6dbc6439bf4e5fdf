"""Tests of bpcli.analysis."""
