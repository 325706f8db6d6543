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
