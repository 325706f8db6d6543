"""benchmark/cartpole_causes.py: its env is CartPole-v1 step for step, and it writes why each episode ended."""

import sys

import gymnasium as gym
import numpy as np
import pytest
from conftest import ROOT, SHORT, load_script, only_run_dir

sys.path.insert(0, str(ROOT / "benchmark"))  # cartpole_causes imports benchmark/cartpole.py beside it
causes = load_script("benchmark/cartpole_causes.py")
episode_returns = causes.episode_returns


def push_right(obs):
    return 1  # the cart speeds off to the right and the pole falls to the left within a few steps


def balance(bias: float):
    """A PD controller on the pole; a bias makes it creep along the track, with the pole up, until it leaves it."""
    return lambda obs: int(3 * obs[2] + obs[3] + bias > 0)


def test_env_is_cartpole_and_records_each_termination(tmp_path, monkeypatch):
    log = tmp_path / "causes.txt"
    monkeypatch.setenv("CARTPOLE_CAUSES", str(log))
    ours, reference = gym.make("CartPoleCauses-v1"), gym.make("CartPole-v1")
    expected, env_steps = [], 0
    # (reset seed, policy): a fall, a drift off the track, a truncation at 500 steps (not written), another fall
    for seed, policy in ((0, push_right), (0, balance(0.1)), (1, balance(0.0)), (2, push_right)):
        obs, _ = ours.reset(seed=seed)
        assert np.array_equal(obs, reference.reset(seed=seed)[0])
        length, done = 0, False
        while not done:
            action = policy(obs)
            obs, reward, terminated, truncated, _ = ours.step(action)
            ref_obs, *ref_outcome, _ = reference.step(action)
            assert np.array_equal(obs, ref_obs) and [reward, terminated, truncated] == ref_outcome
            env_steps, length, done = env_steps + 1, length + 1, terminated or truncated
        if terminated:
            expected.append(f"{env_steps} {length} {'x' if abs(obs[0]) > 2.4 else 'angle'}")
    assert [line.split()[2] for line in expected] == ["angle", "x", "angle"]
    assert int(expected[1].split()[1]) > 100  # the drift took the pole-up cart a long way
    assert log.read_text().splitlines() == expected


def test_env_refuses_to_start_without_a_file(monkeypatch):
    monkeypatch.delenv("CARTPOLE_CAUSES", raising=False)
    with pytest.raises(RuntimeError, match="CARTPOLE_CAUSES"):
        gym.make("CartPoleCauses-v1")


def test_table_counts_the_terminations_of_a_real_run(tmp_path, monkeypatch, capsys):
    bin_steps = 7  # short windows, so that some terminations fall on a window's last step
    argv = ["--seeds", "3", "--bin", str(bin_steps), "--out", str(tmp_path), "--", *SHORT]
    monkeypatch.setattr(sys, "argv", ["cartpole_causes.py", *argv])
    causes.main()
    out = capsys.readouterr().out.splitlines()
    run = tmp_path / "dqn_seed3"
    written = [line.split() for line in (run / "causes.txt").read_text().splitlines()]
    steps = [int(step) for step, _, _ in written]
    returns = episode_returns(only_run_dir(run))
    final = np.mean([r for _, _, r in returns[-20:]])
    assert out[0] == f"dqn.py seed 3, flags changed: {' '.join(SHORT)}; last-20 mean {final:.1f}"
    # windows (end - bin, end] up to the last episode's end; each row counts the terminations written in it
    rows = [row.split("|") for row in out[2:]]
    window_of = [(step - 1) // bin_steps for step in steps]
    assert len(steps) > 10 and any(step % bin_steps == 0 for step in steps)
    assert len(rows) == (returns[-1][0] - 1) // bin_steps + 1
    assert [int(row[1]) for row in rows] == [window_of.count(i) for i in range(len(rows))]
    for i, row in enumerate(rows):  # the share that left the track; "-" where nothing terminated
        in_window = [cause for (_, _, cause), w in zip(written, window_of, strict=True) if w == i]
        share = f"{np.mean([c == 'x' for c in in_window]):.0%}" if in_window else "-"
        assert row[2].strip() == share
    assert "-" in [row[2].strip() for row in rows]  # the run has windows without terminations


@pytest.mark.parametrize("flag", ["--num-envs", "--num_envs", "--save-model", "--resume"])
def test_flags_that_break_the_step_count_are_refused(flag, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["cartpole_causes.py", "--", flag, "2"])
    with pytest.raises(SystemExit) as exit_info:
        causes.main()
    assert exit_info.value.code == 2 and f"{flag.replace('_', '-')} is not supported here" in capsys.readouterr().err
