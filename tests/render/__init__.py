"""Tests of bpcli.render."""
