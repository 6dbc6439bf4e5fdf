"""Tests of bpcli.bridge."""
