"""benchmark/q_estimates.py: it rebuilds a saved network as the script's defaults build it, and discounts by hand."""

import numpy as np
import pytest
import torch
import torch.nn as nn
from conftest import load_script

q_estimates = load_script("benchmark/q_estimates.py")


@pytest.mark.parametrize("script", ["dqn.py", "double_dqn.py"])
def test_greedy_estimates_of_a_constant_network(script, tmp_path):
    """A network of the defaults' layout whose every output is 7: the estimate is 7, and an episode of L rewards of 1
    (always pushing left ends CartPole before its time limit) realises sum_k<L-t gamma^k from each step t, at the
    script's gamma."""
    module = load_script(script)
    args = module.Args()
    q = module.QNetwork(4, 2, args)
    with torch.no_grad():
        for layer in q.modules():
            if isinstance(layer, nn.Linear):
                layer.weight.zero_()
                layer.bias.fill_(7.0 if layer.out_features <= 2 else 0.0)  # the output layer, or V and A: 7 + 7 - 7
    torch.save(q.state_dict(), tmp_path / f"{script[:-3]}.pt")
    estimate, realised, episode_return, n = q_estimates.greedy_estimates(script, tmp_path, "CartPole-v1", 1, 1)
    length = int(episode_return)
    by_hand = [(1 - args.gamma ** (length - t)) / (1 - args.gamma) for t in range(length)]
    assert n == length < 100 and estimate == pytest.approx(7.0)
    assert realised == pytest.approx(np.mean(by_hand))
