"""Tests of bpcli.teach."""
