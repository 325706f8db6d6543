"""Why CartPole-v1 episodes end during training: the cart leaving the track, or the pole falling.

    python benchmark/cartpole_causes.py --seeds 2 4               # dqn.py, default flags
    python benchmark/cartpole_causes.py --seeds 4 -- --gamma 0.99   # flags after -- go to the script

Runs the script on `cartpole_causes:CartPoleCauses-v1`, CartPole-v1 itself (same class, same dynamics, same
returns for a seed) but for one addition: each termination appends `env_step episode_length cause` to the file
named by $CARTPOLE_CAUSES, where cause is `x` (|cart position| > 2.4) or `angle` (|pole angle| > 12 degrees).
Truncations at 500 steps are not terminations and are not written. One env, one run: `--num-envs`,
`--save-model` and `--resume` are refused, since the env counts its own steps. Prints, per 5k env steps,
the episodes that terminated, the share that left the track, and their mean length. Importing this module
registers the env; the script imports it through gymnasium's `module:EnvId` syntax. Runs go under
benchmark/results/ (git-ignored).
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
from cartpole import episode_returns  # benchmark/cartpole.py, beside this file
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

HERE = Path(__file__).resolve().parent
ENV_ID = "cartpole_causes:CartPoleCauses-v1"


class CartPoleCauses(CartPoleEnv):
    """CartPole-v1 that writes the cause of each termination to $CARTPOLE_CAUSES (env steps counted per env)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if "CARTPOLE_CAUSES" not in os.environ:
            raise RuntimeError("CartPoleCauses-v1 writes to the file named by $CARTPOLE_CAUSES, which is not set")
        self.causes_path, self.env_steps, self.episode_length = os.environ["CARTPOLE_CAUSES"], 0, 0

    def reset(self, **kwargs):
        self.episode_length = 0
        return super().reset(**kwargs)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        self.env_steps += 1
        self.episode_length += 1
        if terminated:
            cause = "x" if abs(obs[0]) > self.x_threshold else "angle"
            with open(self.causes_path, "a") as f:
                f.write(f"{self.env_steps} {self.episode_length} {cause}\n")
        return obs, reward, terminated, truncated, info


gym.register("CartPoleCauses-v1", entry_point=CartPoleCauses, max_episode_steps=500, reward_threshold=475.0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--script", default="dqn.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--bin", type=int, default=5000, help="env steps per row of the table")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "causes", help="folder of the runs")
    argv, script_flags = sys.argv[1:], []
    if "--" in argv:
        argv, script_flags = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    a = parser.parse_args(argv)
    # The env counts its own steps: one env, one training run, or the counts stop being the script's env steps.
    for flag in ("--num-envs", "--save-model", "--resume"):
        if any(f.replace("_", "-").split("=")[0] == flag for f in script_flags):  # tyro takes --num_envs too
            parser.error(f"{flag} is not supported here: the table needs one env and one uninterrupted training run")
    for seed in a.seeds:
        cwd = a.out / f"{a.script[:-3]}_seed{seed}"
        cwd.mkdir(parents=True, exist_ok=True)
        causes_file = cwd / "causes.txt"
        causes_file.write_text("")  # a run without terminations leaves it empty
        python_path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, CARTPOLE_CAUSES=str(causes_file), PYTHONPATH=python_path)
        command = [sys.executable, str(HERE.parent / a.script), "--seed", str(seed), "--env-id", ENV_ID, *script_flags]
        before = set((cwd / "runs").glob("*"))
        subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
        (run_dir,) = set((cwd / "runs").glob("*")) - before
        returns = episode_returns(run_dir)
        final = f"{np.mean([r for _, _, r in returns[-20:]]):.1f}" if returns else "- (no episode ended)"
        print(f"{a.script} seed {seed}, flags changed: {' '.join(script_flags) or 'none'}; last-20 mean {final}")
        rows = [line.split() for line in causes_file.read_text().splitlines()]
        steps = np.array([int(r[0]) for r in rows])
        lengths = np.array([int(r[1]) for r in rows])
        left_track = np.array([r[2] == "x" for r in rows])
        print(f"  {'env steps':>15} | terminated episodes | cart left the track | their mean length")
        last_step = max([step for step, _, _ in returns] + [int(steps.max(initial=0))])
        for end in range(a.bin, last_step + a.bin, a.bin):  # every window up to the last episode's end
            m = (steps > end - a.bin) & (steps <= end)
            window = f"{end - a.bin:>7,}-{end:<7,}"
            if m.any():
                print(f"  {window} | {m.sum():>19} | {left_track[m].mean():>19.0%} | {lengths[m].mean():>17.0f}")
            else:
                print(f"  {window} | {0:>19} | {'-':>19} | {'-':>17}")


if __name__ == "__main__":
    main()
