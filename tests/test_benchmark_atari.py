"""benchmark/atari.py on the CPU: the prepared GPU commands' code path runs, and its phases are what it says."""

import re
import subprocess
import sys

from conftest import ROOT, load_script, read_metrics

atari = load_script("benchmark/atari.py")
# --graphed reads dqn_atari.py at 6aa5987 from git: a checkout without that history leaves it out
GRAPHED = subprocess.run(["git", "cat-file", "-e", "6aa5987^{commit}"], cwd=ROOT, capture_output=True).returncode == 0


def test_sps_phases_and_every_comparison(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(atari, "RESULTS", tmp_path)
    flags = ["--num-envs", "2", "--env-steps", "600", "--learning-steps", "400", "--old-stack", "--sb3"]
    flags += ["--graphed"] * GRAPHED
    monkeypatch.setattr(sys, "argv", ["atari.py", "sps", *flags])
    atari.main()
    out = capsys.readouterr().out
    figures = {
        name: float(value.replace(",", ""))
        for name, value in re.findall(r"^(dqn_atari\.py [\w-]+|SB3 DQN [\w-]+): ([\d,]+) SPS", out, re.MULTILINE)
    }
    phases = ("env-only", "learning", "learning-graphed")[: 2 + GRAPHED]
    assert set(figures) == {f"dqn_atari.py {p}" for p in phases} | {
        "SB3 DQN env-only",
        "SB3 DQN learning",
    }, out
    assert all(value > 0 for value in figures.values()), out
    assert "the old env stack alone, random actions" in out and ("both run eagerly" in out) == GRAPHED, out
    runs = {phase: next((tmp_path / f"sps-{phase}-2-cpu" / "runs").iterdir()) for phase in ("env-only", "learning")}
    assert {float(r["value"]) for r in read_metrics(runs["env-only"], "charts/epsilon")} == {1.0}
    assert not read_metrics(runs["env-only"], "losses/td_loss")  # env-only: no gradient step
    assert read_metrics(runs["learning"], "losses/td_loss")
