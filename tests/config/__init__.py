"""Tests of bpcli.config."""
