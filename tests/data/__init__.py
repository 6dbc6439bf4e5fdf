"""Tests of bpcli.data."""
