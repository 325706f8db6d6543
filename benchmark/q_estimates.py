"""Why Double DQN exists, measured: Q estimates against the discounted returns the greedy policy really gets.

    python benchmark/q_estimates.py --seeds 1 2 3 4 5 --jobs 2

For each env, script and seed it trains with the script's default flags and `--save-model`, then plays the
saved network greedily (epsilon 0) for `--episodes` episodes. At every state visited before the env's
time limit it compares the network's estimate max_a Q(s, a) with the discounted return that followed, at the
script's gamma. A truncated episode bootstraps in training, so its estimates value play past the limit: the
greedy episodes run H steps beyond it, gamma^H < 0.05 (299 steps at gamma 0.99, 598 at 0.995), so the return
still missing is worth less than 5% of a maximal value.
Prints a table and writes docs/q_estimates.png. Asserts nothing.
"""

import argparse
import csv
import importlib.util
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmark" / "results" / "q_estimates"
SCRIPTS = ["dqn.py", "double_dqn.py"]


def train(script: str, env_id: str, seed: int) -> Path:
    """One training run with the script's defaults; its run folder (reused if it already finished)."""
    cwd = RESULTS / env_id / script[:-3] / str(seed)
    done = sorted(cwd.glob(f"runs/*/{script[:-3]}.pt"))
    if not done:
        cwd.mkdir(parents=True, exist_ok=True)
        flags = ["--env-id", env_id, "--seed", str(seed), "--save-model", "--eval-episodes", "1"]
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))  # parallel runs: a thread each
        subprocess.run(
            [sys.executable, str(ROOT / script), *flags], cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL
        )
        done = sorted(cwd.glob(f"runs/*/{script[:-3]}.pt"))
    return done[-1].parent


def greedy_estimates(script: str, run_dir: Path, env_id: str, seed: int, episodes: int):
    """(Q estimates, realised discounted returns, undiscounted episode returns) of greedy play."""
    spec = importlib.util.spec_from_file_location("agent", ROOT / script)
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    defaults = agent.Args()  # the network the run trained, and its gamma: the script's defaults
    limit, horizon = gym.spec(env_id).max_episode_steps, math.ceil(math.log(0.05) / math.log(defaults.gamma))
    env = gym.make(env_id, max_episode_steps=limit + horizon)  # states before `limit` see >= horizon steps ahead
    state = torch.load(run_dir / f"{script[:-3]}.pt", weights_only=True)
    q_network = agent.QNetwork(env.observation_space.shape[0], env.action_space.n, defaults)
    q_network.load_state_dict(state)
    estimates, realised, episode_returns = [], [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=10_000 + 100 * seed + episode)
        q_values, rewards, done, truncated = [], [], False, False
        while not done:
            with torch.inference_mode():
                q = q_network(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)).squeeze(0)
            q_values.append(q.max().item())
            obs, reward, terminated, truncated, _ = env.step(int(q.argmax()))
            rewards.append(float(reward))
            done = terminated or truncated
        returns, g = np.zeros(len(rewards)), 0.0
        for t in reversed(range(len(rewards))):
            g = rewards[t] + defaults.gamma * g
            returns[t] = g
        estimates += q_values[:limit]
        realised += list(returns[:limit])
        episode_returns.append(sum(rewards[:limit]))  # the return the time limit allows
    env.close()
    return np.mean(estimates), np.mean(realised), np.mean(episode_returns), len(estimates)


def logged_q_values(run_dir: Path):
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [
            (int(r["global_step"]), float(r["value"])) for r in csv.DictReader(f) if r["metric"] == "losses/q_values"
        ]
    return np.array(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["CartPole-v1", "Acrobot-v1"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--episodes", type=int, default=10, help="greedy episodes per trained network")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at once")
    a = parser.parse_args()
    grid = [(s, e, seed) for e in a.envs for s in SCRIPTS for seed in a.seeds]
    with ThreadPoolExecutor(a.jobs) as pool:
        run_dirs = dict(zip(grid, pool.map(lambda job: train(*job), grid), strict=True))

    print(f"greedy play, {a.episodes} episodes per seed, seeds {a.seeds}; mean +- std over seeds")
    print("| env | script | logged Q (last 10%) | greedy Q estimate | realised disc. return | overestimate | return |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    curves = {}
    for env_id in a.envs:
        for script in SCRIPTS:
            rows = []
            for seed in a.seeds:
                run_dir = run_dirs[(script, env_id, seed)]
                logged = logged_q_values(run_dir)
                last = logged[logged[:, 0] >= 0.9 * logged[-1, 0], 1].mean()
                est, real, ret, _ = greedy_estimates(script, run_dir, env_id, seed, a.episodes)
                rows.append((last, est, real, est - real, ret))
                curves.setdefault((env_id, script), []).append(logged)
            m, s = np.mean(rows, axis=0), np.std(rows, axis=0)
            cells = " | ".join(f"{m[i]:.1f} +- {s[i]:.1f}" for i in range(5))
            print(f"| {env_id} | {script} | {cells} |")
            curves[(env_id, script, "realised")] = m[2]
    plot(curves, a.envs)


def plot(curves, envs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(envs), figsize=(6 * len(envs), 4))
    for ax, env_id in zip(np.atleast_1d(axes), envs, strict=True):
        for script, color in zip(SCRIPTS, ("tab:red", "tab:blue"), strict=True):
            runs = curves[(env_id, script)]
            steps = runs[0][:, 0]
            values = np.array([np.interp(steps, r[:, 0], r[:, 1]) for r in runs])
            ax.plot(steps, values.mean(0), color=color, label=f"{script}: logged Q (mean over seeds)")
            ax.fill_between(steps, values.min(0), values.max(0), color=color, alpha=0.15)
            realised = curves[(env_id, script, "realised")]
            ax.axhline(realised, color=color, linestyle="--", label=f"{script}: greedy discounted return")
        ax.set_title(env_id)
        ax.set_xlabel("env steps")
        ax.set_ylabel("value")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = ROOT / "docs" / "q_estimates.png"
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
