"""Learning: with its default flags, each CartPole script solves CartPole-v1 (a mean of 20 consecutive training returns
of 475 or more) and holds it (a mean of its last 20 returns of 400 or more) on one of three seeds.

The seeds, 307-309, are of the confirm set (docs/tuning.md), which only checked finalists: no tuning screen ran on them.
Not every seed solves and holds: one run in fifty to one in ten ends under 400 (docs/results.md; docs/tuning.md, the
defaults on another CPU), and which seeds do depends on the CPU, whose matrix kernels set the order of the sums (307
holds in `double_dqn.py` on one CPU and ends at 298.7 on another). So the test tries the seeds in turn and passes at the
first that solves and holds; a correct script misses all three at most about once in 1,000 (0.1 cubed), one that does
not learn always. CUDA rounds differently again, so the test pins the CPU.
"""

import numpy as np
import pytest
from conftest import only_run_dir, read_metrics, run_script

SEEDS = (307, 308, 309)


@pytest.mark.parametrize("script", ["dqn.py", "double_dqn.py"])
def test_solves_cartpole_with_defaults_on_one_of_three_seeds(workdir, script):
    tried = []
    for seed in SEEDS:
        (folder := workdir / f"seed{seed}").mkdir()
        run_script(script, "--seed", str(seed), "--no-cuda", cwd=folder)
        returns = [float(r["value"]) for r in read_metrics(only_run_dir(folder), "charts/episodic_return")]
        means = np.convolve(returns, np.ones(20) / 20, mode="valid")
        tried.append(f"seed {seed}: best mean of 20 in a row {means.max():.1f}, last 20 {means[-1]:.1f}")
        if means.max() >= 475 and means[-1] >= 400:
            return
    pytest.fail("no seed solved (best mean of 20 >= 475) and held (last 20 >= 400): " + "; ".join(tried))
