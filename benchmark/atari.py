"""Atari figures for dqn_atari.py: steps per second against Stable-Baselines3, and replay bytes per transition.

    python benchmark/atari.py sps       # env-only and learning-phase SPS, ours vs SB3 DQN("CnnPolicy"), one run
    python benchmark/atari.py sps --device cuda --total 22000       # the same on a GPU, a longer learning phase
    python benchmark/atari.py sps --device cuda --num-envs 8 --async-envs --no-sb3   # ours alone, 8 envs
    python benchmark/atari.py memory    # peak RSS of two runs that differ only in --buffer-size

Both use CleanRL's Atari hyperparameters (1 env, batch 32, train every 4 env steps, target every 1000) with short
budgets. Prints figures; asserts nothing. Runs go under benchmark/results/ (git-ignored).
"""

import argparse
import csv
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmark" / "results" / "atari"
ENV_ID = "BreakoutNoFrameskip-v4"


def run_ours(flags: list[str], name: str, device: str = "cpu") -> Path:
    cwd = RESULTS / name
    flags = [*flags, "--cuda" if device == "cuda" else "--no-cuda"]
    cwd.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(ROOT / "dqn_atari.py"), "--env-id", ENV_ID, *flags],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return sorted((cwd / "runs").glob("*"))[-1]


def phase_sps(run_dir: Path, start_step: int, end_step: int) -> float:
    """Env steps per second from `start_step` to `end_step`, from the (global_step, wall_time) of epsilon rows."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [
            (int(r["global_step"]), float(r["wall_time"])) for r in csv.DictReader(f) if r["metric"] == "charts/epsilon"
        ]
    rows = [r for r in rows if start_step <= r[0] <= end_step]
    return (rows[-1][0] - rows[0][0]) / (rows[-1][1] - rows[0][1])


def sb3_phases(learning_starts: int, total: int, device: str) -> tuple[float, float]:
    """SB3's DQN on the same preprocessing: SPS before and after learning starts."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    class Clock(BaseCallback):
        def _on_training_start(self):
            self.times = {0: time.time()}

        def _on_step(self):
            if self.num_timesteps in (learning_starts, total):
                self.times[self.num_timesteps] = time.time()
            return True

    gym.register_envs(ale_py)
    env = VecFrameStack(make_atari_env(ENV_ID, n_envs=1, seed=1), n_stack=4)
    model = DQN(
        "CnnPolicy",
        env,
        learning_rate=1e-4,
        buffer_size=10_000,
        learning_starts=learning_starts,
        batch_size=32,
        train_freq=4,
        target_update_interval=1000,
        exploration_fraction=0.1,
        exploration_final_eps=0.01,
        seed=1,
        device=device,
    )
    clock = Clock()
    model.learn(total, callback=clock)
    t = clock.times
    return learning_starts / (t[learning_starts] - t[0]), (total - learning_starts) / (t[total] - t[learning_starts])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["sps", "memory"])
    parser.add_argument("--learning-starts", type=int, default=2_000)
    parser.add_argument("--total", type=int, default=3_000)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--num-envs", type=int, default=1, help="ours only; SB3 always runs 1 env")
    parser.add_argument("--async-envs", action="store_true", help="ours only: envs in subprocesses")
    parser.add_argument("--no-sb3", action="store_true", help="skip SB3's runs")
    a = parser.parse_args()
    if a.what == "sps":
        hp = ["--buffer-size", "10000", "--batch-size", "32", "--train-frequency", "4", "--num-envs", str(a.num_envs)]
        hp += ["--async-envs"] if a.async_envs else []
        hp += ["--target-network-frequency", "1000", "--learning-starts", str(a.learning_starts)]
        # SB3 acts uniformly at random before learning starts; so does our env-only run (epsilon held at 1).
        random_flags = ["--start-e", "1", "--end-e", "1", "--total-timesteps", str(a.learning_starts + 1)]
        ours_env = phase_sps(run_ours([*hp, *random_flags], "sps-env", a.device), 100, a.learning_starts)
        ours_run = run_ours([*hp, "--total-timesteps", str(a.total)], "sps", a.device)
        ours_learn = phase_sps(ours_run, a.learning_starts, a.total)
        envs = f"{a.num_envs} env(s)" + (" in subprocesses" if a.async_envs else "")
        print(f"{ENV_ID}, {envs}, {a.device}; env-only phase = first {a.learning_starts:,} steps, learning phase after")
        sb3 = (None, None) if a.no_sb3 else sb3_phases(a.learning_starts, a.total, a.device)
        for phase, ours, theirs in zip(("env-only", "learning"), (ours_env, ours_learn), sb3, strict=True):
            versus = "" if theirs is None else f" | SB3 {theirs:,.0f} SPS | ratio {ours / theirs:.2f}x"
            print(f"{phase}: dqn_atari.py {ours:,.0f} SPS{versus}")
    else:
        sizes, peaks = (2_000, 12_000), []
        for size in sizes:  # the larger run goes second: RUSAGE_CHILDREN keeps the largest peak so far
            flags = ["--buffer-size", str(size), "--total-timesteps", str(size + 500)]
            run_ours([*flags, "--learning-starts", str(size + 499), "--batch-size", "32"], f"memory-{size}")
            peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
        per = (peaks[1] - peaks[0]) / (sizes[1] - sizes[0])
        print(
            f"peak RSS: {peaks[0] / 2**20:,.0f} MiB with {sizes[0]:,} transitions, "
            f"{peaks[1] / 2**20:,.0f} MiB with {sizes[1]:,}: {per:,.0f} bytes per transition "
            f"(1M transitions: {per * 1e6 / 2**30:.1f} GiB)"
        )


if __name__ == "__main__":
    main()
