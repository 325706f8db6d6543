"""benchmark/edge_values.py: its snapshots are the run's own networks, and it moves the cart where it says."""

import signal
import sys

import pytest
import torch
from conftest import SCRIPTS, SHORT, load_script, metric_by_step, only_run_dir, run_script

edge_values = load_script("benchmark/edge_values.py")


def test_mean_value_moves_the_cart_and_keeps_the_rest():
    """A network whose two Q-values are x and -x (x: the cart's position) has max_a Q = |x|, so the value is 2 with
    the cart at -2 or +2 whatever the states were, and the mean |x| of the states as they are."""

    def network(states: torch.Tensor) -> torch.Tensor:
        return torch.stack([states[:, 0], -states[:, 0]], dim=1)

    states = torch.tensor([[0.5, 1.0, 0.1, -1.0], [-1.5, -2.0, 0.0, 3.0]])
    assert edge_values.mean_value(network, states) == pytest.approx(1.0)
    assert edge_values.mean_value(network, states, -2.0) == edge_values.mean_value(network, states, 2.0) == 2.0
    assert states[:, 0].tolist() == [0.5, -1.5]  # the caller's states are left as they were


@pytest.mark.parametrize("script", SCRIPTS)
def test_snapshots_are_the_runs_own_networks(script, tmp_path, monkeypatch):
    """Snapshotting does not change the run: the same episode returns as the script run alone, and the last snapshot
    is the network it saves at the end."""
    flags = [*SHORT, "--save-model", "--eval-episodes", "1"]
    run_script(script, "--seed", "3", "--no-cuda", *flags, cwd=tmp_path)
    plain = only_run_dir(tmp_path)
    monkeypatch.chdir(tmp_path / "runs")
    monkeypatch.setattr(sys, "argv", sys.argv)  # train_with_snapshots sets the script's
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        _, _, snapshots = edge_values.train_with_snapshots(script, 3, 200, flags)
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    snapshot_run = only_run_dir(tmp_path / "runs")
    returns = metric_by_step(plain, "charts/episodic_return")
    assert returns and metric_by_step(snapshot_run, "charts/episodic_return") == returns
    assert sorted(snapshots) == [200, 400]
    saved = torch.load(plain / f"{script[:-3]}.pt", weights_only=True)
    assert all(torch.equal(saved[name], snapshots[400][name]) for name in saved)
    assert not all(torch.equal(snapshots[200][name], snapshots[400][name]) for name in saved)  # it learned between
