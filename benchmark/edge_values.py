"""Why a CartPole-v1 run collapses after it solves: what its Q-network says of states near the ends of the track.

    python benchmark/edge_values.py --script double_dqn.py --seed 1913
    python benchmark/edge_values.py --script dqn.py --seed 1904 -- --lr-decay-fraction 1.0

Trains one run of the script on CartPole-v1 (its defaults, and the flags after `--`) in benchmark/results/edge_values/,
keeping a copy of the Q-network every `--every` env steps; the run is otherwise the script's own, its returns the same.
Then, for each copy, the mean over states of max_a Q on the states of `--episodes` episodes played greedily by the copy
taken at `--probe-step` ("visited"), and on the same states with the cart's position set to -2 and to +2 (the track
ends at +-2.4), velocities and angle kept. A run that holds values those edge states near 0, a few steps from failure;
in runs that collapse, one edge climbs past the ceiling 1 / (1 - gamma) and the policy drifts to it (docs/tuning.md).
Prints a table. Asserts nothing.
"""

import argparse
import copy
import importlib.util
import os
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
EDGES = (-2.0, 2.0)  # cart positions probed; CartPole-v1 terminates past +-2.4


def train_with_snapshots(script: str, seed: int, every: int, flags: list[str]):
    """One run of `script` on CartPole-v1; returns its module, its Args and {env step: Q-network weights}."""
    spec = importlib.util.spec_from_file_location(Path(script).stem, ROOT / script)
    agent = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(agent)
    snapshots = {}

    class SnapshotRun(agent.Run):
        def step_done(self, prev_step: int, step: int, epsilon: float, learning_rate: float) -> None:
            if agent.events_due(prev_step, step, every):
                snapshots[step] = copy.deepcopy(self.state()["q_network"].state_dict())
            super().step_done(prev_step, step, epsilon, learning_rate)

    sys.argv = [script, "--env-id", "CartPole-v1", "--seed", str(seed), "--no-cuda", *flags]
    run = SnapshotRun(*agent.parse_args())
    agent.train(run.args, run)
    run.finish()
    return agent, run.args, snapshots


def greedy_states(q_network: torch.nn.Module, episodes: int) -> torch.Tensor:
    """Every state of `episodes` greedy episodes (reset seeds 100, 101, ...), each to its termination or time limit."""
    env, states = gym.make("CartPole-v1"), []
    for episode in range(episodes):
        (obs, _), done = env.reset(seed=100 + episode), False
        while not done:
            states.append(obs)
            with torch.no_grad():
                action = int(q_network(torch.as_tensor(obs).unsqueeze(0)).argmax(dim=1)[0])
            obs, _, terminated, truncated, _ = env.step(action)
            done = terminated or truncated
    env.close()
    return torch.as_tensor(np.array(states))


def mean_value(q_network: torch.nn.Module, states: torch.Tensor, cart_position: float | None = None) -> float:
    """Mean over states of max_a Q(s, a); with `cart_position`, each state's x set to it first."""
    states = states.clone()
    if cart_position is not None:
        states[:, 0] = cart_position
    with torch.no_grad():
        return q_network(states).max(dim=1).values.mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", default="dqn.py", choices=["dqn.py", "double_dqn.py"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--every", type=int, default=5000, help="env steps between snapshots")
    parser.add_argument("--probe-step", type=int, default=35000, help="the snapshot whose greedy play gives the states")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("flags", nargs="*", help="after --: flags for the script")
    a = parser.parse_args()
    out = ROOT / "benchmark" / "results" / "edge_values" / f"{a.script[:-3]}_{a.seed}"
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)  # the run's folder lands here
    agent, args, snapshots = train_with_snapshots(a.script, a.seed, a.every, a.flags)

    def network(step: int) -> torch.nn.Module:
        q_network = agent.QNetwork(4, 2, args)
        q_network.load_state_dict(snapshots[step])
        return q_network

    states = greedy_states(network(a.probe_step), a.episodes)
    print(f"\n{a.script} seed {a.seed} {' '.join(a.flags)}: {len(states)} states of the {a.probe_step:,}-step network")
    print("| env step | visited | " + " | ".join(f"x = {x:+g}" for x in EDGES) + " |\n| --- | --- | --- | --- |")
    for step in sorted(snapshots):
        values = [mean_value(network(step), states), *(mean_value(network(step), states, x) for x in EDGES)]
        print(f"| {step:,} | " + " | ".join(f"{v:.1f}" for v in values) + " |")


if __name__ == "__main__":
    main()
