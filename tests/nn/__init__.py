"""Tests of bpcli.nn."""
