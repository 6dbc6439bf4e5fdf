"""Tests of bpcli.runs."""
