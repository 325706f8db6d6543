"""Atari speed of dqn_atari.py: env-only and learning steps per second, against SB3's DQN and the old env stack.

    python benchmark/atari.py sps --num-envs 4 --old-stack --rounds 5   # this CPU: ours against SB3's wrappers
    python benchmark/atari.py sps --num-envs 1 --sb3             # ours and SB3's DQN("CnnPolicy"), one env each
    python benchmark/atari.py sps --device cuda --num-envs 16 --learning-steps 400000   # a GPU: 16 envs
    python benchmark/atari.py sps --device cuda --num-envs 1 --learning-steps 8000 --graphed  # what CUDA graphs gain
    python benchmark/atari.py memory                             # peak RSS of two runs that differ in --buffer-size

`sps` runs dqn_atari.py with CleanRL's Atari hyperparameters (batch 32, train every 4 env steps, target copy every
1,000) in two phases: env-only (epsilon 1 while the buffer fills, no gradient step) and learning (epsilon 0.01, a
gradient step every 4 env steps), each timed from the run's own metrics.csv. `--old-stack` also times, with random
actions and nothing else, ALE's vector env alone (the ceiling of ours) and the env stack dqn_atari.py had before it
(SB3's AtariWrapper and gymnasium's FrameStackObservation in a same-step SyncVectorEnv, as many envs): an upper
bound of what that script's env-only phase could do. `--old-script` times that script's env-only phase itself
(git commit 0e08ccf). `--sb3` times SB3's DQN on its own Atari env stack, both phases (random actions before
learning starts). `--graphed` also times the learning phase of dqn_atari.py at commit 6aa5987, the last with CUDA
graphs (`CudaGraphed`): what they would gain.
Prints figures; asserts nothing. Runs go under benchmark/results/ (git-ignored).
"""

import argparse
import csv
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmark" / "results" / "atari"
CLEANRL = ["--batch-size", "32", "--train-frequency", "4", "--target-network-frequency", "1000"]


def script_at(commit: str) -> Path:
    """dqn_atari.py as it was at a git commit, written under RESULTS."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (old := RESULTS / f"dqn_atari_{commit}.py").write_bytes(
        subprocess.run(["git", "show", f"{commit}:dqn_atari.py"], cwd=ROOT, capture_output=True, check=True).stdout
    )
    return old


def run_ours(name: str, flags: list[str], script: Path = ROOT / "dqn_atari.py") -> Path:
    """Run dqn_atari.py (or an older copy) in its own folder under RESULTS; its run folder."""
    cwd = RESULTS / name
    cwd.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(script), *flags], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return sorted((cwd / "runs").glob("*"))[-1]


def phase_sps(run_dir: Path, start_step: int, end_step: int) -> float:
    """Env steps per second between two env steps, from the (global_step, wall_time) of the run's epsilon rows."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [
            (int(r["global_step"]), float(r["wall_time"])) for r in csv.DictReader(f) if r["metric"] == "charts/epsilon"
        ]
    rows = [r for r in rows if start_step <= r[0] <= end_step]
    if len(rows) < 2:  # epsilon is logged every 100 env steps
        sys.exit(f"a phase of env steps {start_step:,}-{end_step:,} holds under two logged steps: make it longer")
    return (rows[-1][0] - rows[0][0]) / (rows[-1][1] - rows[0][1])


def old_stack_sps(env_id: str, num_envs: int, steps: int) -> float:
    """Random actions through SB3's AtariWrapper and a 4-frame stack in a same-step SyncVectorEnv: env steps/s."""
    import ale_py
    import gymnasium as gym
    from stable_baselines3.common.atari_wrappers import AtariWrapper

    gym.register_envs(ale_py)

    def thunk():
        env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id))
        return gym.wrappers.FrameStackObservation(gym.wrappers.ReshapeObservation(AtariWrapper(env), (84, 84)), 4)

    envs = gym.vector.SyncVectorEnv([thunk] * num_envs, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=1)
    rng, start = np.random.default_rng(1), time.time()
    for _ in range(steps // num_envs):
        envs.step(rng.integers(envs.single_action_space.n, size=num_envs))
    return steps // num_envs * num_envs / (time.time() - start)


def old_script_sps(a, env_steps: int) -> float:
    """The env-only phase of dqn_atari.py at commit 0e08ccf, before ale_py's vector env, from its metrics.csv."""
    flags = ["--env-id", a.env_id, "--num-envs", str(a.num_envs), "--buffer-size", str(env_steps), "--no-cuda"]
    flags += ["--start-e", "1", "--end-e", "1", "--learning-starts", str(env_steps)]
    run_dir = run_ours(f"old-script-{a.num_envs}", [*flags, "--total-timesteps", str(env_steps + a.num_envs)],
                       script_at("0e08ccf"))  # fmt: skip
    return phase_sps(run_dir, 100 * a.num_envs, env_steps)


def bare_sps(env_id: str, num_envs: int, steps: int) -> float:
    """ALE's vector env alone, as dqn_atari.py builds it, stepping random actions: the ceiling of the loop around it."""
    sys.path.insert(0, str(ROOT))
    from dqn_atari import make_envs

    envs, rng = make_envs(env_id, num_envs), np.random.default_rng(1)
    envs.reset(seed=1)
    start = time.time()
    for _ in range(steps // num_envs):
        envs.step(rng.integers(envs.single_action_space.n, size=num_envs))
    return steps // num_envs * num_envs / (time.time() - start)


def sb3_sps(env_id: str, num_envs: int, learning_starts: int, total: int, device: str) -> tuple[float, float]:
    """SB3's DQN("CnnPolicy") at the same hyperparameters: env steps/s before and after learning starts."""
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
            for mark in (learning_starts, total):
                if mark not in self.times and self.num_timesteps >= mark:
                    self.times[mark] = (self.num_timesteps, time.time())
            return True

    gym.register_envs(ale_py)
    env = VecFrameStack(make_atari_env(env_id, n_envs=num_envs, seed=1), n_stack=4)
    # SB3 counts train_freq in calls of the vector step: num_envs gradient steps a call keep one per 4 env steps
    model = DQN("CnnPolicy", env, learning_rate=1e-4, buffer_size=100_000, learning_starts=learning_starts,
                batch_size=32, train_freq=4, gradient_steps=num_envs, target_update_interval=1000,
                exploration_final_eps=0.01, seed=1, device=device)  # fmt: skip
    clock = Clock()
    model.learn(total, callback=clock)
    (n0, t0), (n1, t1) = clock.times[learning_starts], clock.times[total]
    return n0 / (t0 - clock.times[0]), (n1 - n0) / (t1 - t0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["sps", "memory"])
    parser.add_argument("--env-id", default="BreakoutNoFrameskip-v4")
    parser.add_argument("--num-envs", type=int, default=1)
    parser.add_argument("--env-steps", type=int, default=4_000, help="length of the env-only phase")
    parser.add_argument("--learning-steps", type=int, default=2_000, help="length of the learning phase")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--old-stack", action="store_true", help="also time the env stack of before, env-only")
    parser.add_argument("--old-script", action="store_true", help="also time the script before ALE's vector env")
    parser.add_argument("--sb3", action="store_true", help="also time SB3's DQN, both phases")
    parser.add_argument("--graphed", action="store_true", help="also time learning at 6aa5987, with CUDA graphs")
    parser.add_argument("--rounds", type=int, default=1, help="env-only comparisons, interleaved; their median ratio")
    a = parser.parse_args()
    if a.what == "memory":
        sizes, peaks = (2_000, 12_000), []
        for size in sizes:  # the larger run goes second: RUSAGE_CHILDREN keeps the largest peak so far
            flags = ["--buffer-size", str(size), "--total-timesteps", str(size + 500), "--learning-starts", str(size)]
            run_ours(f"memory-{size}", [*flags, "--no-cuda"])
            peaks.append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
        per = (peaks[1] - peaks[0]) / (sizes[1] - sizes[0])
        print(f"peak RSS {peaks[0] / 2**20:,.0f} MiB at {sizes[0]:,} transitions, {peaks[1] / 2**20:,.0f} MiB at "
              f"{sizes[1]:,}: {per:,.0f} bytes a transition (7,074 by construction)")  # fmt: skip
        return
    env_steps, total = a.env_steps, a.env_steps + a.learning_steps
    common = ["--env-id", a.env_id, "--num-envs", str(a.num_envs), *CLEANRL, "--buffer-size", str(min(total, 10**6))]
    common += ["--cuda" if a.device == "cuda" else "--no-cuda", "--learning-starts", str(env_steps)]
    runs = {  # epsilon held at 1 fills the buffer as CleanRL's warm-up does; the learning run acts at 0.01 after it
        "env-only": (["--start-e", "1", "--end-e", "1", "--total-timesteps", str(env_steps + a.num_envs)], 0),
        "learning": (["--exploration-fraction", str(env_steps / total), "--total-timesteps", str(total)], env_steps),
    }
    print(f"{a.env_id}, {a.num_envs} env(s), {a.device}: env-only {env_steps:,} steps, learning {a.learning_steps:,}")
    figures, ratios = {}, {}

    def time_ours(phase: str, script: Path = ROOT / "dqn_atari.py") -> None:
        flags, start = runs[phase.removesuffix("-graphed")]
        run_dir = run_ours(f"sps-{phase}-{a.num_envs}-{a.device}", [*common, *flags], script)
        figures[phase] = phase_sps(run_dir, start + 100 * a.num_envs, total if start else env_steps)
        print(f"dqn_atari.py {phase}: {figures[phase]:,.0f} SPS", flush=True)

    for round_ in range(1, a.rounds + 1):  # rounds interleave the env stacks: the machine's speed drifts in between
        time_ours("env-only")
        others = {}
        if a.old_stack:
            others["ALE's vector env alone, random actions (the ceiling)"] = bare_sps(a.env_id, a.num_envs, env_steps)
            others["the old env stack alone, random actions"] = old_stack_sps(a.env_id, a.num_envs, env_steps)
        if a.old_script:
            others["dqn_atari.py at 0e08ccf (the old env stack), env-only"] = old_script_sps(a, env_steps)
        for name, sps in others.items():
            ratios.setdefault(name, []).append(figures["env-only"] / sps)
            print(f"round {round_}: {name}: {sps:,.0f} SPS; dqn_atari.py env-only is {ratios[name][-1]:.2f}x")
    time_ours("learning")
    if a.graphed:  # a speed trick comes back only if it pays 10%: the graphs' share of learning SPS
        time_ours("learning-graphed", script_at("6aa5987"))
        ratio = figures["learning-graphed"] / figures["learning"]
        noise = " (on the CPU both run eagerly: the machine's noise)" * (a.device == "cpu")
        print(f"CUDA graphs (6aa5987): learning {ratio:.2f}x this script's SPS{noise}")
    for name, values in ratios.items() if a.rounds > 1 else ():
        print(f"dqn_atari.py env-only against {name}: median {np.median(values):.2f}x over {a.rounds} rounds "
              f"({', '.join(f'{r:.2f}' for r in values)})")  # fmt: skip
    if a.sb3:
        theirs = sb3_sps(a.env_id, a.num_envs, env_steps, total, a.device)
        for phase, sps in zip(("env-only", "learning"), theirs, strict=True):
            print(f"SB3 DQN {phase}: {sps:,.0f} SPS; dqn_atari.py is {figures[phase] / sps:.2f}x")


if __name__ == "__main__":
    main()
