"""bpcli's tests, one folder per package of src/bpcli."""
