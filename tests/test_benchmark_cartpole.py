"""benchmark/cartpole.py: costs times both scripts' own pieces and prints every figure it names; zoo's measures."""

import math
import re

import pytest
from conftest import load_script

cartpole = load_script("benchmark/cartpole.py")


@pytest.mark.parametrize("script", ["dqn.py", "double_dqn.py"])
def test_costs_prints_a_greedy_action_and_three_gradient_steps(script, capsys):
    cartpole.main(["costs", "--script", script, "--calls", "30"])
    out = capsys.readouterr().out
    line = rf"^{re.escape(script)}: (greedy action|gradient step), batch (\d+): ([\d.]+) (us|ms)$"
    figures = re.findall(line, out, re.MULTILINE)
    assert [(what, int(batch)) for what, batch, _, _ in figures] == [
        ("greedy action", 1),
        ("gradient step", 64),
        ("gradient step", 128),
        ("gradient step", 256),
    ], out
    assert all(float(value) > 0 for _, _, value, _ in figures), out


def test_training_measures_by_hand():
    returns = [10.0] * 5 + [500.0] * 20 + [100.0]  # 20 in a row first reach 475 at episode 23: 10 + 19 * 500 = 9510
    last, best, solved_at = cartpole.training_measures([int(r) for r in returns], returns)
    assert (last, best, solved_at) == ((19 * 500 + 100) / 20, 500.0, 5 * 10 + 19 * 500)
    last, best, solved_at = cartpole.training_measures([10, 20, 30], [10.0, 20.0, 30.0])
    assert last == 20.0 and math.isnan(best) and solved_at is None


def test_zoo_prints_each_seeds_measures_and_a_summary_that_agrees(capsys):
    cartpole.main(["zoo", "--seeds", "3", "4", "--total-timesteps", "1500"])  # a few SB3 gradient rounds, no solve
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \| ([\d.]+) \| (-|[\d,]+) \| ([\d.]+) \|$", out, re.MULTILINE)
    assert [int(seed) for seed, *_ in rows] == [3, 4], out
    lasts, bests = [float(row[1]) for row in rows], [float(row[2]) for row in rows]
    assert all(8.0 <= last <= best < 475.0 for last, best in zip(lasts, bests, strict=True)), out
    assert [row[3] for row in rows] == ["-", "-"] and all(8.0 <= float(row[4]) <= 500.0 for row in rows), out
    assert f"2 seeds: mean last 20 {sum(lasts) / 2:.2f}, 2 end under 475" in out, out
