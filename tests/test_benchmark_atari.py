"""benchmark/atari.py on the CPU: the prepared GPU commands' code path runs, and its phases are what it says."""

import re
import sys

from conftest import load_script, read_metrics

atari = load_script("benchmark/atari.py")


def test_sps_phases_and_every_comparison(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(atari, "RESULTS", tmp_path)
    flags = ["--num-envs", "2", "--env-steps", "600", "--learning-steps", "400", "--old-stack", "--eager", "--sb3"]
    monkeypatch.setattr(sys, "argv", ["atari.py", "sps", *flags])
    atari.main()
    out = capsys.readouterr().out
    figures = {
        name: float(value.replace(",", ""))
        for name, value in re.findall(r"^(dqn_atari\.py [\w-]+|SB3 DQN [\w-]+): ([\d,]+) SPS", out, re.MULTILINE)
    }
    assert set(figures) == {f"dqn_atari.py {p}" for p in ("env-only", "learning", "learning-eager")} | {
        "SB3 DQN env-only",
        "SB3 DQN learning",
    }, out
    assert all(value > 0 for value in figures.values()), out
    assert "the old env stack alone, random actions" in out and "both runs are eager" in out, out
    runs = {phase: next((tmp_path / f"sps-{phase}-2-cpu" / "runs").iterdir()) for phase in ("env-only", "learning")}
    assert {float(r["value"]) for r in read_metrics(runs["env-only"], "charts/epsilon")} == {1.0}
    assert not read_metrics(runs["env-only"], "losses/td_loss")  # env-only: no gradient step
    assert read_metrics(runs["learning"], "losses/td_loss")
