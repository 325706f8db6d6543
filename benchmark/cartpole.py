"""CartPole-v1 figures for dqn.py (and double_dqn.py): time to solve at the defaults, and speed against SB3.

    python benchmark/cartpole.py solve --seeds 400 401 402          # one run at a time, as `python dqn.py` runs
    python benchmark/cartpole.py solve --script double_dqn.py --seeds 400 401 -- --total-timesteps 60000
    python benchmark/cartpole.py sps --rounds 3                     # steps/s at CleanRL's settings, ours vs SB3
    python benchmark/cartpole.py sps --device cuda                  # the same with both on the GPU
    python benchmark/cartpole.py costs                              # what a greedy action and a gradient step cost
    python benchmark/cartpole.py zoo --seeds 2600 2601              # SB3 with rl-baselines3-zoo's tuned CartPole DQN

`solve` runs the script with its defaults (flags after `--` are added) one seed at a time, with torch's own thread
settings, and prints per seed: the env step and wall seconds (from the start of training) at which the mean of
the last 20 training returns first reaches 475, the mean of the last 20 returns, and the whole process's wall
time. `sps` times dqn.py and SB3's DQN with CleanRL's CartPole hyperparameters (shortened to 50k steps), in turn,
`--rounds` times. `costs` times the script's own pieces at its defaults, on the CPU: a greedy action at batch 1
and a gradient step (as its loop takes one) at batches 64, 128 and 256. `zoo` trains SB3's DQN with the zoo's tuned
CartPole-v1 hyperparameters, one seed at a time, and prints the measures the scripts are judged by, on its training
episodes: last-20 mean, best 20 in a row and the env step where 20 in a row first reach 475; then the zoo's own
measure, the mean of 10 greedy episodes of the final network. Prints figures; asserts nothing. Runs go
under benchmark/results/ (git-ignored).
"""

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmark" / "results" / "cartpole"
SOLVED = 475.0
# CleanRL's dqn.py CartPole hyperparameters, 50k steps instead of 500k (exploration over the first half, as there).
CLEANRL = dict(learning_rate=2.5e-4, buffer_size=10_000, learning_starts=10_000, batch_size=128, gamma=0.99, tau=1.0)
CLEANRL |= dict(target_network_frequency=500, train_frequency=10, start_e=1.0, end_e=0.05, exploration_fraction=0.5)
CLEANRL |= dict(total_timesteps=50_000, n_step=1)  # SB3: n_steps=1 by default
# rl-baselines3-zoo's CartPole-v1 DQN (hyperparams/dqn.yml, "Almost Tuned"; it publishes 500.00 for one agent, greedy).
ZOO = dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99)
ZOO |= dict(target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16)
ZOO |= dict(exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]))


def episode_returns(run_dir: Path) -> list[tuple[int, float, float]]:
    """(global_step, wall_time, return) of every training episode in a run's metrics.csv."""
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        (int(r["global_step"]), float(r["wall_time"]), float(r["value"]))
        for r in rows
        if r["metric"] == "charts/episodic_return"
    ]


def first_solved(returns, window: int = 20):
    """(env step, wall seconds) where the mean of the last `window` returns first reaches 475, or None."""
    reached = np.flatnonzero(means_of(window, [r for _, _, r in returns]) >= SOLVED)
    return (returns[reached[0] + window - 1][0], returns[reached[0] + window - 1][1]) if reached.size else None


def means_of(window: int, values) -> np.ndarray:
    """The mean of each `window` consecutive values; empty when there are fewer."""
    values = np.asarray(values, dtype=float)
    return np.convolve(values, np.ones(window) / window, mode="valid") if len(values) >= window else np.array([])


def training_measures(lengths, returns) -> tuple[float, float, int | None]:
    """From episode lengths and returns in order: the last-20 mean, the best mean of 20 in a row (NaN under 20
    episodes) and the env step at the end of the episode that first brings 20 in a row to 475 (None if none does)."""
    steps, means = np.cumsum(lengths), means_of(20, returns)
    solved = first_solved(list(zip(steps, np.zeros(len(steps)), returns, strict=True)))
    return float(np.mean(returns[-20:])), float(means.max()) if means.size else float("nan"), solved and int(solved[0])


def run(script: str, flags: list[str], cwd: Path) -> tuple[float, Path]:
    """Run a script in `cwd`: its process's wall seconds and its run folder."""
    cwd.mkdir(parents=True, exist_ok=True)
    before, start = set((cwd / "runs").glob("*")), time.time()
    subprocess.run([sys.executable, str(ROOT / script), *flags], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    (run_dir,) = set((cwd / "runs").glob("*")) - before
    return time.time() - start, run_dir


def solve(a) -> None:
    print(f"{a.script} {' '.join(a.flags)}: | seed | solved at env step | solved at (s) | last-20 mean | process (s) |")
    rows = []
    for seed in a.seeds:
        wall, run_dir = run(a.script, ["--seed", str(seed), *a.flags], RESULTS / "solve" / Path(a.script).stem)
        returns = episode_returns(run_dir)
        solved, last20 = first_solved(returns), np.mean([r for *_, r in returns[-20:]])
        rows.append((solved, last20, wall))
        at = f"{solved[0]:,} | {solved[1]:.1f}" if solved else "- | -"
        print(f"| {seed} | {at} | {last20:.1f} | {wall:.1f} |", flush=True)
    times = [s[1] for s, _, _ in rows if s]
    print(f"{len(times)} of {len(rows)} solve, median {np.median(times) if times else float('nan'):.1f} s; last-20 "
          f"mean {np.mean([r[1] for r in rows]):.1f}; longest process {max(r[2] for r in rows):.1f} s")  # fmt: skip


def sps(a) -> None:
    """dqn.py and SB3's DQN in alternation, `--rounds` times (this machine's speed drifts): each round's ratio, then
    the median."""
    import gymnasium as gym
    from stable_baselines3 import DQN

    flags = [f"--{k.replace('_', '-')}={v}" for k, v in CLEANRL.items()] + ["--hidden-sizes", "120", "84"]
    flags += ["--no-amsgrad", "--no-dueling", "--lr-decay-fraction", "0", "--max-grad-norm", "0"]  # all but MSE
    h, ratios = CLEANRL, []
    for round_ in range(1, a.rounds + 1):
        _, run_dir = run("dqn.py", [*flags, "--cuda" if a.device == "cuda" else "--no-cuda"], RESULTS / "sps")
        with open(run_dir / "metrics.csv", newline="") as f:
            ours = [float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "charts/SPS"][-1]
        model = DQN("MlpPolicy", gym.make("CartPole-v1"), learning_rate=h["learning_rate"], seed=1, device=a.device,
                    buffer_size=h["buffer_size"], learning_starts=h["learning_starts"], batch_size=h["batch_size"],
                    gamma=h["gamma"], tau=h["tau"], target_update_interval=h["target_network_frequency"],
                    train_freq=h["train_frequency"], exploration_final_eps=h["end_e"],
                    exploration_fraction=h["exploration_fraction"], policy_kwargs=dict(net_arch=[120, 84]))  # fmt: skip
        start = time.time()
        model.learn(h["total_timesteps"])
        theirs = h["total_timesteps"] / (time.time() - start)
        ratios.append(ours / theirs)
        threads = os.environ.get("OMP_NUM_THREADS", "unset")
        print(f"round {round_}: CartPole-v1, CleanRL's settings, 50k steps, {a.device}: dqn.py {ours:,.0f} SPS, "
              f"SB3 {theirs:,.0f} SPS, {ours / theirs:.2f}x (OMP_NUM_THREADS={threads})")  # fmt: skip
    if a.rounds > 1:
        spread = f"{min(ratios):.2f}-{max(ratios):.2f}x"
        print(f"dqn.py against SB3: median {np.median(ratios):.2f}x over {a.rounds} rounds ({spread})")


def zoo(a) -> None:
    """SB3's DQN at the zoo's CartPole-v1 settings for --total-timesteps (the zoo's 50k), a seed at a time, on the CPU.
    What SB3 adds by default: the Huber loss, gradients clipped at norm 10, and a target copied every 10 env steps,
    which leaves it fixed through each block of 128 gradient steps (they run between env steps)."""
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    print(f"SB3 DQN, zoo settings, {a.total_timesteps:,} steps: | seed | last-20 mean | best 20 in a row | solved at "
          "| greedy, 10 episodes |")  # fmt: skip
    lasts = []
    for seed in a.seeds:
        env = Monitor(gym.make("CartPole-v1"))
        model = DQN("MlpPolicy", env, seed=seed, device="cpu", **ZOO).learn(a.total_timesteps)
        last, best, at = training_measures(env.get_episode_lengths(), env.get_episode_rewards())
        lasts.append(last)
        (eval_env := DummyVecEnv([lambda: Monitor(gym.make("CartPole-v1"))])).seed(seed)  # its resets: the seed's
        greedy, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
        print(f"| {seed} | {last:.2f} | {best:.2f} | {f'{at:,}' if at else '-'} | {greedy:.2f} |", flush=True)
    print(f"{len(lasts)} seeds: mean last 20 {np.mean(lasts):.2f}, {sum(x < SOLVED for x in lasts)} end under 475")


def costs(a) -> None:
    """Mean per-call cost, after a warm-up, of a greedy action at batch 1 and of a gradient step at 3 batch sizes."""
    import importlib.util

    import torch
    import torch.nn.functional as F

    spec = importlib.util.spec_from_file_location(Path(a.script).stem, ROOT / a.script)
    spec.loader.exec_module(script := importlib.util.module_from_spec(spec))
    args, rng, cpu = script.Args(), np.random.default_rng(0), torch.device("cpu")
    q_network, target_network = script.QNetwork(4, 2, args), script.QNetwork(4, 2, args).eval()
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, amsgrad=args.amsgrad, fused=True)

    def per_call(fn, calls: int) -> float:
        for _ in range(calls // 10):
            fn()
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls

    def gradient_step(batch_size: int) -> None:  # as the script's loop takes one, at its defaults, CartPole's rewards
        batch = rb.sample(batch_size, rng, cpu)
        with torch.no_grad():
            next_values = script.next_state_value(q_network, target_network, batch["next_obs"])
            if args.clamp_values:
                next_values = next_values.clamp(0.0, 1.0 / (1 - args.gamma))
            targets = script.td_target(batch["rewards"], batch["terminated"], next_values, batch["discounts"])
        q_taken = q_network(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q_taken, targets)
        loss.item(), q_taken.detach().mean().item()  # the loop reads both: a non-finite loss ends a run
        optimizer.zero_grad()
        loss.backward()
        if args.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(q_network.parameters(), args.max_grad_norm)
        optimizer.step()

    obs = rng.random((1, 4), dtype=np.float32)
    greedy = per_call(lambda: script.greedy_actions(q_network, obs, cpu), a.calls)
    print(f"{a.script}: greedy action, batch 1: {greedy * 1e6:.1f} us")
    rb = script.ReplayBuffer(10_000, 4, 1, args.n_step, args.gamma)  # 10k random CartPole-like steps, no episode end
    for _ in range(10_000):
        rb.add(rng.random((1, 4)), rng.random((1, 4)), rng.integers(2, size=1), np.ones(1), [False], [False])
    for batch_size in (64, 128, 256):
        step = per_call(lambda batch_size=batch_size: gradient_step(batch_size), max(1, a.calls // 10))
        print(f"{a.script}: gradient step, batch {batch_size}: {step * 1e3:.2f} ms")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["solve", "sps", "costs", "zoo"])
    parser.add_argument("--script", default="dqn.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[400, 401, 402])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--rounds", type=int, default=1, help="sps: rounds of dqn.py then SB3; their median ratio")
    parser.add_argument("--calls", type=int, default=20_000, help="costs: greedy actions timed (gradient steps: 1/10)")
    parser.add_argument("--total-timesteps", type=int, default=50_000, help="zoo: env steps a run (the zoo's 50k)")
    a = parser.parse_args(argv)
    a.flags = flags
    {"solve": solve, "sps": sps, "costs": costs, "zoo": zoo}[a.what](a)


if __name__ == "__main__":
    main()
