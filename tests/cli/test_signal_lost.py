"""A SIGINT or SIGTERM at start-up whose Interrupted exception Python could only report ("Exception ignored in",
e.g. inside a finaliser) is not lost: the training session honours the recorded signal and stops at once."""

from __future__ import annotations

import signal

from typer.testing import CliRunner

from bpcli import errors
from bpcli.cli.app import app
from bpcli.runs.store import load_run


def test_a_recorded_signal_stops_training_before_its_first_epoch(tmp_path, monkeypatch):
    (tmp_path / "cfg.yaml").write_text("inputs: 2\nlayers: [2, 1]\ndata: {generator: xor}\n"
                                       "train: {epochs: 2000, lr: 1.0}\n")
    monkeypatch.setattr(errors, "received_signal", [])
    import bpcli.runs.session as session
    monkeypatch.setattr(session, "received_signal", errors.received_signal)
    errors.received_signal.append(signal.SIGTERM)  # as __main__'s handler records it, its exception swallowed
    res = CliRunner().invoke(app, ["train", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "run"), "-q"])
    assert res.exit_code == 128 + signal.SIGTERM, res.output
    state = load_run(tmp_path / "run").state
    assert (state.status, state.epoch) == ("interrupted", 0)  # saved at epoch 0 and resumable
