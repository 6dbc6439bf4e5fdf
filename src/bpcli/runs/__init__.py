"""Run folders: the format on disk, claiming and locking, history, weight snapshots, the session."""
