"""Tests of bpcli.cli: the commands end to end."""
