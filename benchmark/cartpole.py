"""CartPole-v1 figures for dqn.py (and double_dqn.py): speed against Stable-Baselines3, and time to solve.

    python benchmark/cartpole.py sps                 # steps/s at CleanRL's hyperparameters, ours vs SB3, one run
    python benchmark/cartpole.py sps --device cuda   # the same with both on the GPU
    python benchmark/cartpole.py solve --seeds 1 2 3 4 5   # wall time to solve and final return, default flags
    python benchmark/cartpole.py solve --seeds 6 7 -- --gamma 0.995   # the same with flags changed
    python benchmark/cartpole.py solve-sb3 --seeds 1 2 3   # the same figures for SB3 DQN at its zoo settings
    python benchmark/cartpole.py floor               # per-call costs in hot loops: the least a torch DQN pays
    python benchmark/cartpole.py floor --compiled    # also the bare update's loss through torch.compile
    python benchmark/cartpole.py sps --numpy-learner # ours with its gradient steps written by hand in NumPy
    python benchmark/cartpole.py parts               # where the time of the real loop goes (timed copy of it)

Prints figures; asserts only that floor's NumPy learner computes torch's gradient step. Runs go under
benchmark/results/ (git-ignored).
"""

import argparse
import copy
import csv
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmark" / "results"
# CleanRL's dqn.py defaults for CartPole, shortened to 50k steps (exploration over the first half, as in CleanRL).
CLEANRL = dict(
    hidden_sizes=(120, 84),
    amsgrad=False,  # CleanRL's optimizer is plain Adam
    learning_rate=2.5e-4,
    lr_decay_fraction=0,  # CleanRL's learning rate is constant
    buffer_size=10_000,
    learning_starts=10_000,
    batch_size=128,
    gamma=0.99,
    tau=1.0,
    target_network_frequency=500,
    train_frequency=10,
    start_e=1.0,
    end_e=0.05,
    exploration_fraction=0.5,
    total_timesteps=50_000,
    max_grad_norm=0,  # CleanRL does not clip gradients (SB3 does, at its default 10)
)
# rl-baselines3-zoo's tuned CartPole-v1 settings for SB3's DQN (hyperparams/dqn.yml; 50k steps).
SB3_ZOO = dict(
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
    policy_kwargs=dict(net_arch=[256, 256]),
)
SOLVED = 475.0


def flags(hparams: dict) -> list[str]:
    """Command-line flags for the scripts: `--name value`, `--name v1 v2` for a tuple, `--[no-]name` for a bool."""
    out = []
    for name, value in hparams.items():
        name = name.replace("_", "-")
        if isinstance(value, bool):
            out.append(f"--{'' if value else 'no-'}{name}")
        else:
            out += [f"--{name}", *map(str, value if isinstance(value, tuple) else [value])]
    return out


def episode_returns(run_dir: Path) -> list[tuple[int, float, float]]:
    """(global_step, wall_time, return) of every training episode in a run's metrics.csv."""
    with open(run_dir / "metrics.csv", newline="") as f:
        return [
            (int(r["global_step"]), float(r["wall_time"]), float(r["value"]))
            for r in csv.DictReader(f)
            if r["metric"] == "charts/episodic_return"
        ]


def first_solved(returns, window: int = 20, threshold: float = SOLVED):
    """(env step, wall seconds) where the mean of the last `window` returns first reaches `threshold`, or None."""
    values = [r for _, _, r in returns]
    for i in range(window - 1, len(values)):
        if np.mean(values[i - window + 1 : i + 1]) >= threshold:
            return returns[i][0], returns[i][1]
    return None


def run_ours(script: str | Path, extra: list[str], cwd: Path) -> tuple[float, Path]:
    cwd.mkdir(parents=True, exist_ok=True)
    before = set((cwd / "runs").glob("*"))
    start = time.time()
    subprocess.run([sys.executable, str(ROOT / script), *extra], cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    (run_dir,) = set((cwd / "runs").glob("*")) - before  # this run's folder, whatever ran there before
    return time.time() - start, run_dir


def sps_ours(script: str | Path, device: str) -> float:
    _, run_dir = run_ours(
        script, [*flags(CLEANRL), f"--{'' if device == 'cuda' else 'no-'}cuda"], RESULTS / "sps" / Path(script).stem
    )
    with open(run_dir / "metrics.csv", newline="") as f:
        return [float(r["value"]) for r in csv.DictReader(f) if r["metric"] == "charts/SPS"][-1]


def sps_sb3(device: str) -> float:
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN

    h = CLEANRL
    model = DQN(
        "MlpPolicy",
        gym.make("CartPole-v1"),
        learning_rate=h["learning_rate"],
        buffer_size=h["buffer_size"],
        learning_starts=h["learning_starts"],
        batch_size=h["batch_size"],
        gamma=h["gamma"],
        tau=h["tau"],
        target_update_interval=h["target_network_frequency"],
        train_freq=h["train_frequency"],
        gradient_steps=1,
        exploration_initial_eps=h["start_e"],
        exploration_final_eps=h["end_e"],
        exploration_fraction=h["exploration_fraction"],
        policy_kwargs=dict(net_arch=list(h["hidden_sizes"])),
        seed=1,
        device=device,
    )
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    start = time.time()
    model.learn(h["total_timesteps"])
    return h["total_timesteps"] / (time.time() - start)


def solve_sb3(seed: int) -> tuple[float, list[tuple[int, float, float]]]:
    """Train SB3's DQN at its zoo settings for 50k steps (SB3 rounds up to whole 256-step rollouts: 50,176): wall
    seconds of training and every training episode's (env step, wall seconds since training started, return),
    as `episode_returns` gives them for ours."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class Record(BaseCallback):
        def _on_training_start(self) -> None:
            self.start, self.returns = time.time(), []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:  # SB3's Monitor: the finished episode's return
                    self.returns.append((self.num_timesteps, time.time() - self.start, float(info["episode"]["r"])))
            return True

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), seed=seed, device="cpu", **SB3_ZOO)
    record, start = Record(), time.time()
    model.learn(50_000, callback=record)
    return time.time() - start, record.returns


def per_call_us(fn, calls: int = 3000) -> float:
    for _ in range(100):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def numpy_learner(q_network, target_network, gamma: float, betas=(0.9, 0.999), eps: float = 1e-8):
    """The gradient step written by hand in NumPy, for an MLP of Linear and ReLU layers with plain Adam and no
    clipping (CleanRL's settings): what leaving torch's cost per operation would buy. Measured, not adopted.

    It works on views of both networks' parameters, so the target copies and `numpy_greedy` see its steps.
    Returns update(obs, next_obs, actions, rewards, terminated, lr) -> (Huber loss, Q of the actions taken); its
    attribute `moments` holds Adam's (first, second) moments per parameter, for `floor`'s check.
    """
    weights = [p.detach().numpy() for p in q_network.parameters()]
    target_weights = [p.detach().numpy() for p in target_network.parameters()]
    moments = [(np.zeros_like(w), np.zeros_like(w)) for w in weights]
    step = 0

    def forward(layers, x):
        """Each layer's input, then the output: Q-values."""
        inputs = [x]
        for i in range(0, len(layers), 2):
            x = x @ layers[i].T + layers[i + 1]
            if i + 2 < len(layers):
                x = np.maximum(x, 0)
            inputs.append(x)
        return inputs

    def update(obs, next_obs, actions, rewards, terminated, lr):
        nonlocal step
        targets = rewards + gamma * forward(target_weights, next_obs)[-1].max(axis=1) * (1 - terminated)
        inputs = forward(weights, obs)
        rows = np.arange(len(actions))
        q_taken = inputs[-1][rows, actions]
        error = q_taken - targets
        loss = float(np.where(np.abs(error) < 1, 0.5 * error * error, np.abs(error) - 0.5).mean())
        grad_out = np.zeros_like(inputs[-1])
        grad_out[rows, actions] = np.clip(error, -1, 1) / len(actions)  # the mean Huber loss's gradient
        grads = [None] * len(weights)
        for i in range(len(weights) - 2, -1, -2):
            grads[i], grads[i + 1] = grad_out.T @ inputs[i // 2], grad_out.sum(axis=0)
            if i:
                grad_out = (grad_out @ weights[i]) * (inputs[i // 2] > 0)
        step += 1
        for w, g, (m, v) in zip(weights, grads, moments, strict=True):
            m *= betas[0]
            m += (1 - betas[0]) * g
            v *= betas[1]
            v += (1 - betas[1]) * g * g
            w -= lr / (1 - betas[0] ** step) * m / (np.sqrt(v / (1 - betas[1] ** step)) + eps)
        return loss, q_taken

    update.moments = moments
    return update


def floor(compiled: bool = False) -> None:
    """The least this DQN pays per env step at CleanRL's settings, from hot loops of each part alone.

    A hot loop keeps code and data in cache, so the real loop pays more; this is a lower bound, and the
    gradient step here is the bare minimum (no sampling, no checks, no logging). The same step written by hand in
    NumPy (`numpy_learner`) is first checked against torch's, then timed. With `compiled`, the bare update with its
    loss through torch.compile (forward passes and, through AOTAutograd, their backward; zero_grad and Adam stay
    eager): what compiling costs, and what it saves.
    """
    import gymnasium as gym
    import torch
    import torch.nn.functional as F

    spec = importlib.util.spec_from_file_location("dqn", ROOT / "dqn.py")
    dqn = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dqn)
    torch.manual_seed(0)
    envs = gym.vector.SyncVectorEnv(
        [dqn.make_env("CartPole-v1", 0, False, "floor")], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
    )
    envs.reset(seed=0)
    actions = np.zeros(1, dtype=np.int64)
    q_network, target_network = (dqn.QNetwork(4, 2, CLEANRL["hidden_sizes"]) for _ in range(2))
    optimizer = torch.optim.Adam(q_network.parameters(), lr=CLEANRL["learning_rate"], fused=True)
    one_obs = np.zeros((1, 4), dtype=np.float32)
    batch = CLEANRL["batch_size"]
    obs, rewards, taken = torch.randn(batch, 4), torch.randn(batch), torch.zeros(batch, 1, dtype=torch.long)

    def bare_loss():
        with torch.no_grad():
            targets = rewards + CLEANRL["gamma"] * target_network(obs).max(dim=1).values
        return F.smooth_l1_loss(q_network(obs).gather(1, taken).squeeze(1), targets)

    def bare_update(loss_fn=bare_loss):
        loss = loss_fn()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    weights = [m.weight.detach() for m in q_network.network if isinstance(m, torch.nn.Linear)]
    activations = [obs] + [torch.randn(batch, w.shape[0]) for w in weights]  # each layer's input, then the output

    def matrix_products():
        """The products in bare_update, with its shapes: 3 forward per network, then the gradients' 5."""
        for _ in range(2):
            for x, w in zip(activations[:-1], weights, strict=True):
                x @ w.T
        for x, grad_out in zip(activations[:-1], activations[1:], strict=True):
            grad_out.T @ x  # weight gradients
        for w, grad_out in zip(weights[1:], activations[2:], strict=True):
            grad_out @ w  # input gradients (none for the first layer's input)

    env_us = per_call_us(lambda: envs.step(actions))
    torch_greedy_us = per_call_us(lambda: dqn.greedy_actions(q_network, one_obs, torch.device("cpu")))
    numpy_greedy = dqn.numpy_greedy(q_network, 4)
    assert numpy_greedy is not None, "dqn.numpy_greedy declined the network"
    greedy_us = per_call_us(lambda: numpy_greedy(one_obs))
    update_us = per_call_us(bare_update)
    products_us = per_call_us(matrix_products)
    small = torch.ones(2)
    op_us = per_call_us(lambda: small + small)  # torch's fixed cost of one operation, with nothing to compute
    h = CLEANRL
    epsilons = [
        dqn.linear_schedule(h["start_e"], h["end_e"], h["exploration_fraction"] * h["total_timesteps"], t)
        for t in range(h["total_timesteps"])
    ]
    exploit = 1 - float(np.mean(epsilons))
    updates = (h["total_timesteps"] - h["learning_starts"]) / h["train_frequency"] / h["total_timesteps"]
    per_step = env_us + exploit * greedy_us + updates * update_us
    print(f"env step (1-env SyncVectorEnv, CartPole-v1): {env_us:7.1f} us per call")
    print(f"greedy action (dqn.numpy_greedy, 1 obs):     {greedy_us:7.1f} us per call, on {exploit:.0%} of steps")
    print(f"  (the same through torch, dqn.greedy_actions: {torch_greedy_us:.1f} us per call)")
    print(
        f"bare update (batch {batch}, target, Huber, backward, fused Adam): {update_us:7.1f} us per call, "
        f"{updates:.2f} per env step"
    )
    print(f"  (its matrix products alone, same shapes: {products_us:.1f} us per update)")
    print(f"  (one eager torch op on 2 floats, its fixed cost: {op_us:.2f} us per call)")
    # The NumPy update must compute what torch's does: three steps of each from the same weights, on a batch with
    # both actions, terminations and errors on both sides of the Huber loss's kink, through dqn.py's own helpers,
    # with a soft target update between steps (the NumPy learner must see it through its views).
    columns = ("obs", "next_obs", "actions", "rewards", "terminated")
    torch_net, numpy_net = copy.deepcopy(q_network), copy.deepcopy(q_network)
    check_target = copy.deepcopy(target_network)
    torch_optimizer = torch.optim.Adam(torch_net.parameters(), lr=CLEANRL["learning_rate"], fused=True)
    numpy_update = numpy_learner(numpy_net, check_target, CLEANRL["gamma"])
    check = {
        "obs": torch.randn(batch, 4),
        "next_obs": torch.randn(batch, 4),
        "actions": torch.randint(2, (batch,)),
        "rewards": 3 * torch.randn(batch),
        "terminated": torch.randint(2, (batch,)).float(),
    }
    for _ in range(3):
        with torch.no_grad():
            next_values = dqn.next_state_value(torch_net, check_target, check["next_obs"])
            check_targets = dqn.td_target(check["rewards"], check["terminated"], next_values, CLEANRL["gamma"])
        q_taken = torch_net(check["obs"]).gather(1, check["actions"].unsqueeze(1)).squeeze(1)
        assert 0 < float(((q_taken - check_targets).abs() < 1).float().mean()) < 1, "both sides of the kink"
        check_loss = F.smooth_l1_loss(q_taken, check_targets)
        torch_optimizer.zero_grad()
        check_loss.backward()
        torch_optimizer.step()
        numpy_loss, numpy_q_taken = numpy_update(*(check[k].numpy() for k in columns), CLEANRL["learning_rate"])
        assert abs(numpy_loss - check_loss.item()) < 1e-6, (numpy_loss, check_loss.item())
        assert np.abs(numpy_q_taken - q_taken.detach().numpy()).max() < 1e-6
        dqn.soft_update(check_target, torch_net, 0.5)
    gaps = [(a - b).detach().abs().max() for a, b in zip(numpy_net.parameters(), torch_net.parameters(), strict=True)]
    for p, (m, v) in zip(torch_net.parameters(), numpy_update.moments, strict=True):
        state = torch_optimizer.state[p]
        gaps += [np.abs(m - state["exp_avg"].numpy()).max(), np.abs(v - state["exp_avg_sq"].numpy()).max()]
    gap = float(max(gaps))
    assert gap < 1e-6, f"the NumPy update drifts from torch's by {gap}"
    np_batch = (obs.numpy(), obs.numpy(), taken.squeeze(1).numpy(), rewards.numpy(), np.zeros(batch, np.float32))
    numpy_us = per_call_us(lambda: numpy_update(*np_batch, CLEANRL["learning_rate"]))
    print(f"  (written by hand in NumPy: {numpy_us:.1f} us per call; weights and moments equal torch's to {gap:.0e})")
    if compiled:
        compiled_loss = torch.compile(bare_loss)
        start = time.perf_counter()
        bare_update(compiled_loss)
        compile_s = time.perf_counter() - start
        compiled_us = per_call_us(lambda: bare_update(compiled_loss))
        print(f"  (through torch.compile: {compiled_us:.1f} us per call, after a first call of {compile_s:.1f} s)")
    print(f"floor: {per_step:.1f} us per env step = at most {1e6 / per_step:,.0f} SPS at CleanRL's settings")
    numpy_step = per_step + updates * (numpy_us - update_us)
    print(f"  (with the NumPy update: {numpy_step:.1f} us per env step = at most {1e6 / numpy_step:,.0f} SPS)")


# Timers spliced into a copy of the main loop: (start of a line in it, code put before it, code put after it).
PART_TIMERS = [
    ("            epsilon = linear_schedule(", "_t0 = time.perf_counter()", None),
    (
        "            next_obs, rewards, terminations, truncations, infos = envs.step(actions)",
        "_t1 = time.perf_counter(); PARTS['act'] += _t1 - _t0",
        "_t2 = time.perf_counter(); PARTS['env step'] += _t2 - _t1",
    ),
    (
        "            rb.add(obs, real_next_obs, actions, rewards, terminations)",
        "_t3 = time.perf_counter(); PARTS['episode bookkeeping'] += _t3 - _t2",
        "_t4 = time.perf_counter(); PARTS['replay add'] += _t4 - _t3",
    ),
    (
        '            counters["global_step"] = global_step',
        "_t5 = time.perf_counter(); PARTS['updates'] += _t5 - _t4",
        None,
    ),
    (
        "            progress.update(global_step, sps, epsilon, recent_returns",
        None,
        "PARTS['logging'] += time.perf_counter() - _t5",
    ),
    ("if __name__ == ", None, "    import collections; PARTS = collections.defaultdict(float)"),
    (
        "        elapsed = time.time() - start_time",
        "print('PARTS', json.dumps({k: v / global_step * 1e6 for k, v in PARTS.items()}))",
        None,
    ),
]


def numpy_learner_copy(script: str) -> Path:
    """A copy of the script whose gradient steps go through `numpy_learner` instead of torch (CleanRL's settings only:
    plain Adam, no clipping); everything else, the NumPy greedy action included, is the script's own code."""
    text = (ROOT / script).read_text()
    start = text.index("                batch = rb.sample(args.batch_size, sample_generator, device)\n")
    end = text.index("                optimizer.step()\n", start) + len("                optimizer.step()\n")
    update = """                batch = rb.sample(args.batch_size, sample_generator, device)
                lr = learning_rate_at(args.learning_rate, args.lr_decay_fraction, args.total_timesteps, global_step)
                columns = (batch[k].numpy() for k in ("obs", "next_obs", "actions", "rewards", "terminated"))
                loss_value, q_taken = numpy_update(*columns, lr)
                q_taken = torch.from_numpy(q_taken)
                if not math.isfinite(loss_value):  # after the step, not before it as in the script: the run ends anyway
                    raise FloatingPointError(f"non-finite TD loss ({loss_value}) at env step {global_step:,}")
                for group in optimizer.param_groups:  # the logged learning rate, as in the script
                    group["lr"] = lr
"""
    anchor = "    greedy = greedy or (lambda o: greedy_actions(q_network, o, device))\n"
    setup = f"""    assert not args.amsgrad and args.max_grad_norm == 0, "plain Adam, no clipping only"
    sys.path.insert(0, {str(ROOT / "benchmark")!r})
    import cartpole
    numpy_update = cartpole.numpy_learner(q_network, target_network, args.gamma)
"""
    text = text[:start] + update + text[end:]
    at = text.index(anchor) + len(anchor)  # fails loudly if the script changed there
    text = text[:at] + setup + text[at:]
    copy_path = RESULTS / "numpy_learner" / f"numpy_{script}"
    copy_path.parent.mkdir(parents=True, exist_ok=True)
    copy_path.write_text(text)
    return copy_path


def parts(script: str) -> None:
    """Run a copy of the script with timers around each part of its loop; print microseconds per env step."""
    lines = (ROOT / script).read_text().splitlines()
    for anchor, before, after in PART_TIMERS:
        (i,) = [n for n, line in enumerate(lines) if line.startswith(anchor)]  # fails loudly if the loop changed
        indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
        lines[i : i + 1] = [*([indent + before] if before else []), lines[i], *([indent + after] if after else [])]
    timed = RESULTS / "parts" / f"timed_{script}"
    timed.parent.mkdir(parents=True, exist_ok=True)
    timed.write_text("import json\n" + "\n".join(lines) + "\n")
    out = subprocess.run(
        [sys.executable, str(timed), *flags(CLEANRL)], cwd=timed.parent, check=True, capture_output=True, text=True
    ).stdout
    per_step = json.loads(out.split("PARTS ", 1)[1].splitlines()[0])
    print(f"{script} at CleanRL's hyperparameters, timers around each part of a copy of its loop:")
    for name, us in per_step.items():
        print(f"{name:>20}: {us:6.1f} us per env step")
    total = sum(per_step.values())
    print(f"{'total':>20}: {total:6.1f} us per env step ({1e6 / total:,.0f} SPS with the timers)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["sps", "solve", "solve-sb3", "floor", "parts"])
    parser.add_argument("--script", default="dqn.py")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--repeats", type=int, default=1, help="sps: alternate ours and SB3 this many times")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="sps: where both learners run")
    parser.add_argument("--compiled", action="store_true", help="floor: also the bare update through torch.compile")
    parser.add_argument(
        "--numpy-learner", action="store_true", help="sps: run a copy of the script whose gradient steps are NumPy's"
    )
    argv, script_flags = sys.argv[1:], []
    if "--" in argv:  # solve: what follows `--` goes to the script
        argv, script_flags = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    a = parser.parse_args(argv)
    if script_flags and a.what != "solve":
        parser.error(f"flags after -- go to the script of `solve`, not to `{a.what}`")
    if a.compiled and a.what != "floor":
        parser.error("--compiled is a flag of `floor`")
    if a.numpy_learner and (a.what != "sps" or a.device != "cpu" or a.script != "dqn.py"):
        parser.error("--numpy-learner is a flag of `sps` for dqn.py on the CPU (numpy_learner has DQN's target)")
    if a.what == "floor":
        floor(a.compiled)
    elif a.what == "parts":
        parts(a.script)
    elif a.what == "sps":
        print(f"CartPole-v1, CleanRL's hyperparameters, {CLEANRL['total_timesteps']:,} env steps, 1 env, {a.device}")
        ours_path = numpy_learner_copy(a.script) if a.numpy_learner else a.script
        name = f"{a.script} with numpy_learner" if a.numpy_learner else a.script
        for _ in range(a.repeats):
            ours, sb3 = sps_ours(ours_path, a.device), sps_sb3(a.device)
            print(f"{name}: {ours:,.0f} SPS | SB3 DQN: {sb3:,.0f} SPS | ratio {ours / sb3:.2f}x")
    else:
        learner = "SB3 DQN at rl-baselines3-zoo's settings" if a.what == "solve-sb3" else a.script
        changed = " ".join(script_flags) or "none"
        print(f"{learner} on CartPole-v1, flags changed: {changed}; solved = mean of the last 20 returns >= {SOLVED}")
        finals, solve_times = [], []
        for seed in a.seeds:
            if a.what == "solve-sb3":
                wall, returns = solve_sb3(seed)
            else:
                cwd = RESULTS / "solve" / a.script[:-3]
                wall, run_dir = run_ours(a.script, ["--seed", str(seed), *script_flags], cwd)
                returns = episode_returns(run_dir)
            solved = first_solved(returns)
            final = float(np.mean([r for _, _, r in returns[-20:]]))
            finals.append(final)
            if solved:
                solve_times.append(solved[1])
            where = f"step {solved[0]:,} at {solved[1]:.1f} s" if solved else "never"
            wall_of = "training" if a.what == "solve-sb3" else "process"
            print(f"seed {seed}: solved {where}; last-20 mean {final:.1f}; {wall_of} wall {wall:.1f} s")
        print(
            f"solved {len(solve_times)}/{len(a.seeds)} seeds; median time to solve "
            f"{f'{np.median(solve_times):.1f} s' if solve_times else '-'}; "
            f"final last-20 mean over seeds {np.mean(finals):.1f} +- {np.std(finals):.1f}"
        )


if __name__ == "__main__":
    main()
