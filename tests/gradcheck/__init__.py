"""Tests of bpcli.gradcheck."""
