"""benchmark/cartpole.py costs: it times both scripts' own pieces and prints every figure it names."""

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


def test_zoo_prints_each_seeds_last_20_and_a_summary_that_agrees(capsys):
    cartpole.main(["zoo", "--seeds", "3", "4", "--total-timesteps", "1500"])  # a few SB3 gradient rounds, no solve
    out = capsys.readouterr().out
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \| ([\d.]+|-) \| (-|[\d,]+) \| ([\d.]+) \|$", out, re.MULTILINE)
    assert [int(seed) for seed, *_ in rows] == [3, 4], out
    lasts = [float(last) for _, last, _, _, _ in rows]
    assert all(8.0 <= last < 475.0 for last in lasts) and [at for *_, at, _ in rows] == ["-", "-"], out
    assert all(8.0 <= float(greedy) <= 500.0 for *_, greedy in rows), out
    assert f"2 seeds: mean last 20 {sum(lasts) / 2:.2f}, 2 end under 475" in out, out
