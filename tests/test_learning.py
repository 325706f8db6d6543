"""Learning: with its default flags and a fixed seed, dqn.py solves CartPole-v1 (about 50 s here, one thread).

Not every seed does at the default budget (23 of seeds 1-30; README): seed 8 is one that does on a CPU, and ends
at 483.0. A seed's run depends on the arithmetic, and CUDA rounds differently (on an H100, seed 7 of earlier
defaults peaked at 275 where the CPU solved it), so the test pins the CPU.
"""

import numpy as np
from conftest import only_run_dir, read_metrics, run_script


def test_dqn_solves_cartpole_with_defaults(workdir):
    run_script("dqn.py", "--seed", "8", "--no-cuda", cwd=workdir)
    returns = [float(r["value"]) for r in read_metrics(only_run_dir(workdir), "charts/episodic_return")]
    means = [np.mean(returns[i - 20 : i]) for i in range(20, len(returns) + 1)]
    assert max(means) >= 475, f"best mean of 20 consecutive returns: {max(means):.1f}"
    assert means[-1] >= 475, f"mean of the last 20 returns: {means[-1]:.1f}"
