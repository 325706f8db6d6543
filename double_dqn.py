"""Double DQN with an MLP Q-network for vector observations: a single-file research baseline.

Algorithm: Double DQN, van Hasselt, Guez and Silver 2016, "Deep Reinforcement Learning with Double Q-learning".
TD target: r + gamma * Q_target(s', argmax_a Q_online(s', a)): the online network picks the next action and
the target network scores it. DQN's max_a Q_target(s', a) lets one noisy estimate both pick and score, which
overestimates. This is the only difference from `dqn.py`; `diff dqn.py double_dqn.py` shows it.

Experience replay, an epsilon-greedy behaviour policy on a linear schedule, and a target network updated
by Polyak averaging (tau = 1 is the paper's hard copy). The target bootstraps unless the episode
*terminated*: a time-limit truncation bootstraps from the true final observation.
For gymnasium (>= 1.0) envs with a flat `Box` observation and a `Discrete` action space (default CartPole-v1).

Departures from CleanRL's dqn.py, each for a reason given where it is made: the Huber loss (the paper's
error clipping; MSE diverged in our CartPole tuning), gradient-norm clipping at 1 (it delays the late divergence
of the Q estimates), defaults tuned on CartPole-v1 for time to solve, then for the final return (see `Args`),
among them a 256-256 network trained with AMSGrad (final returns spread less than with CleanRL's 120-84 and
Adam) and a learning rate that falls to 0 over the last 20% of the run (CleanRL's is constant), `--num-envs N`
for any N, same-step autoreset, metrics.csv beside wandb, checkpoint/resume and input
validation. Contract: SPEC.md; flags, metrics and results: README.md.
One departure from SPEC: a flag value of the wrong type (`--num-envs abc`) is refused by tyro, in a box of several
lines rather than one (exit code 2, nothing created).
"""

import csv
import math
import os
import pickle
import random
import signal
import struct
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from gymnasium.vector import AutoresetMode


@dataclass
class Args:
    # --- infrastructure ---
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """name of this experiment: part of the run name `{env_id}__{exp_name}__{seed}__{unix_time}` (CleanRL's
    default, the file's name)"""
    seed: int = 1
    """seed of every random stream: network init, exploration, replay sampling, env resets (CleanRL's default)"""
    torch_deterministic: bool = True
    """if True, CUDA uses deterministic algorithms only (CPU runs are deterministic either way; CleanRL's default)"""
    cuda: bool = True
    """if True, use CUDA when it is available (the CPU otherwise; CleanRL's default); the first line printed names
    the device.
    For an MLP this small the CPU is faster: CartPole ran 1.6-2.9x faster with --no-cuda on H100 machines
    (measured with a 120-84 net)"""
    track: bool = False
    """if True, log to Weights & Biases (`WANDB_MODE=offline` works without network); off by default, as in CleanRL,
    so a run needs no account"""
    wandb_project_name: str = "dqn-baselines"
    """wandb project of the run (with `--track`); this project's name (CleanRL's is `cleanRL`)"""
    wandb_entity: str | None = None
    """wandb team or user of the run (with `--track`); None: your default entity (CleanRL's default)"""
    capture_video: bool = False
    """if True, record episodes of env 0 as videos under `videos/{run_name}/`, a resumed run's under
    `videos/{run_name}/resumed_at_{env_step}/` (off: CleanRL's default)"""
    save_model: bool = False
    """if True, save the Q-network weights to `runs/{run_name}/{exp_name}.pt` at the end and evaluate them (off:
    CleanRL's default)"""
    eval_episodes: int = 10
    """episodes played by the evaluation after `--save-model` (CleanRL's number)"""
    eval_epsilon: float = 0.05
    """exploration rate during that evaluation (CleanRL's `evaluate`; 0 is fully greedy)"""
    checkpoint_frequency: int = 0
    """write `runs/{run_name}/checkpoint.pt` every this many env steps; 0 (the default: a CartPole run takes under
    a minute): only on Ctrl-C / SIGTERM"""
    checkpoint_buffer: bool = False
    """if True, checkpoints include the replay buffer (training goes straight on after a resume, with the same
    replay; the file grows by the buffer's size). Off by default: without it a resumed run refills the buffer for
    `learning_starts` env steps before training again"""
    resume: str | None = None
    """checkpoint to continue from (None, the default: a new run); exp_name, seed, env and algorithm flags come from
    it (giving one of them another value is refused), the other flags above this one do not"""

    # --- algorithm ---
    env_id: str = "CartPole-v1"
    """gymnasium id of the env; `my_module:MyEnv-v0` imports `my_module` to register it first (CleanRL's default)"""
    total_timesteps: int = 50_000
    """env steps of training, summed over all envs (tuned: solved by ~40k; CleanRL trains 500k)"""
    learning_rate: float = 1e-3
    """Adam learning rate (tuned; CleanRL 2.5e-4 learns too slowly for the budget)"""
    lr_decay_fraction: float = 0.2
    """last fraction of `total_timesteps` over which the learning rate falls linearly to 0; 0: constant (tuned: it
    settles the policy that the final returns measure; dqn.py ended seeds 1-60 at 462.8 with 0.2 and 454.2 with 0,
    seeds 1-20 at 478.6 with 0.2 and 471.6 with 0.4; CleanRL and SB3 keep it constant). Logged as
    `charts/learning_rate`, a metric beyond SPEC's list (CleanRL's PPO logs it under that name)"""
    amsgrad: bool = True
    """if True, Adam's AMSGrad variant (Reddi et al. 2018): a parameter's step size never grows back as its
    gradients shrink (tuned: dqn.py with 256 256 ended seeds 1-20 at 465.4 with it, 378.1 without; CleanRL and
    SB3 use plain Adam)"""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """widths of the Q-network's hidden layers, a ReLU after each (SB3 zoo's CartPole net; CleanRL 120 84).
    dqn.py with AMSGrad ends seeds 1-30 at 459.9 +- 43.6; with 120 84 and plain Adam, the defaults before,
    at 442.7 +- 78.5 (docs/cartpole_tuning.md)"""
    num_envs: int = 1
    """parallel envs; all step counts here are summed over them (1: CleanRL's default, the paper's setting)"""
    buffer_size: int = 100_000
    """replay capacity in transitions (SB3 zoo's CartPole value; CleanRL 10k)"""
    gamma: float = 0.99
    """discount factor (CleanRL's default)"""
    tau: float = 0.005
    """target update rate: target <- tau * online + (1 - tau) * target; 1 is a hard copy (tuned; CleanRL 1.0)"""
    target_network_frequency: int = 1
    """env steps between target updates (tuned: a soft update every step; CleanRL a hard copy every 500)"""
    batch_size: int = 64
    """transitions per gradient step (SB3 zoo's CartPole value; CleanRL 128)"""
    start_e: float = 1.0
    """exploration rate at the start of training (CleanRL's default)"""
    end_e: float = 0.04
    """exploration rate at the end of the schedule (SB3 zoo's CartPole value; CleanRL 0.05)"""
    exploration_fraction: float = 0.16
    """fraction of `total_timesteps` over which epsilon falls linearly from start_e to end_e (SB3 zoo; CleanRL 0.5)"""
    learning_starts: int = 1_000
    """env steps before the first gradient step, acting epsilon-greedy meanwhile (SB3 zoo's CartPole; CleanRL 10k)"""
    train_frequency: int = 3
    """env steps between gradient steps (tuned: dqn.py with 120 84 and plain Adam ended seeds 1-30 at 442.7 with 3,
    401.0 with 4; CleanRL 10)"""
    max_grad_norm: float = 1.0
    """max global L2 norm of the gradient, rescaled before each Adam step; 0: off (tuned; CleanRL off, SB3 10)
    dqn.py ended seeds 1-30 at 442.7 with it, 411.5 without (120 84, plain Adam): it delays Q's divergence."""


# Flags a resumed run takes from the command line (the infrastructure flags but exp_name and seed); the others
# come from the checkpoint, so the run goes on as it started.
SESSION_FLAGS = ("torch_deterministic", "cuda", "track", "wandb_project_name", "wandb_entity", "capture_video")
SESSION_FLAGS += ("save_model", "eval_episodes", "eval_epsilon", "checkpoint_frequency", "checkpoint_buffer", "resume")
SCRIPT = os.path.basename(__file__)  # recorded in checkpoints: a resume refuses another script's


def make_env(env_id: str, idx: int, capture_video: bool, run_name: str):
    """Return a thunk that builds env `idx`; env 0 records videos when asked."""

    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        else:
            env = gym.make(env_id)
        return env

    return thunk


class QNetwork(nn.Module):
    """MLP from a flat observation to one Q-value per action, a ReLU after each hidden layer."""

    def __init__(self, obs_dim: int, n_actions: int, hidden_sizes: tuple[int, ...]):
        super().__init__()
        layers, width = [], obs_dim
        for hidden in hidden_sizes:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.network = nn.Sequential(*layers, nn.Linear(width, n_actions))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)


def linear_schedule(start_e: float, end_e: float, duration: float, t: int) -> float:
    """Epsilon at env step t: linear from start_e at t=0 to end_e at t=duration, constant after."""
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def explore_actions(u: np.ndarray, epsilon: float, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """The random part of epsilon-greedy, from one uniform draw u per env: (which envs explore, their actions).

    An env explores where u < epsilon; there u / epsilon is uniform on [0, 1), so floor(u / epsilon * n_actions)
    is uniform over the actions. Elsewhere the caller takes the greedy action (and the second array means nothing).
    """
    explore = u < epsilon
    return explore, (u / max(epsilon, 1e-12) * n_actions).astype(np.int64)


def learning_rate_at(base: float, decay_fraction: float, total: int, t: int) -> float:
    """Learning rate at env step t: `base` until the last `decay_fraction` of `total` steps, then linear to 0."""
    decay_start = (1.0 - decay_fraction) * total
    if decay_fraction == 0 or t <= decay_start:
        return base
    if t >= total:  # N envs may step past the end; also no division by zero for a tiny fraction
        return 0.0
    return base * (1.0 - (t - decay_start) / (total - decay_start))


def events_due(prev_step: int, step: int, every: int, start: int = 0) -> int:
    """Number of multiples of `every` in (max(prev_step, start), step].

    The env step counter moves by num_envs at a time; counting the multiples it crosses (instead of
    testing `step % every == 0`) keeps every schedule in env steps whatever num_envs is.
    """
    low = max(prev_step, start)
    return max(0, step // every - low // every)


def next_state_value(q_network: nn.Module, target_network: nn.Module, next_obs: torch.Tensor) -> torch.Tensor:
    """Double DQN's value of s': Q_target(s', argmax_a Q_online(s', a))."""
    next_actions = q_network(next_obs).argmax(dim=1, keepdim=True)
    return target_network(next_obs).gather(1, next_actions).squeeze(1)


def td_target(rewards: torch.Tensor, terminated: torch.Tensor, next_values: torch.Tensor, gamma: float):
    """r + gamma * V(s'), with no bootstrap after a termination (a truncation does bootstrap)."""
    assert rewards.shape == terminated.shape == next_values.shape and rewards.ndim == 1
    return rewards + gamma * next_values * (1.0 - terminated)


def soft_update(target_network: nn.Module, q_network: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target; exact copy when tau == 1."""
    with torch.no_grad():
        for target_param, param in zip(target_network.parameters(), q_network.parameters(), strict=True):
            target_param.lerp_(param, tau)


class ReplayBuffer:
    """Circular buffer of transitions, one float32 row each, preallocated on one device.

    A row is [obs, next_obs, action, reward, terminated]: one copy stores a step of all envs and one
    gather samples a batch, on the CPU and on the GPU alike. `next_obs` is stored per transition, so
    a truncated step keeps its true final observation. Sampling is uniform, with replacement.
    For a GPU buffer, rows wait on the host (`stage_on_host`) and travel in one copy when the buffer is next
    read or 1,024 rows wait: one host-to-device copy per gradient step, not one per env step.
    """

    def __init__(self, capacity: int, obs_dim: int, device: torch.device, stage_on_host: bool | None = None):
        self.capacity, self.obs_dim, self.device, self.pos, self.size = capacity, obs_dim, device, 0, 0
        self.data = torch.zeros((capacity, self.row_size(obs_dim)), dtype=torch.float32, device=device)
        # On the CPU, rows are written through a numpy view of the same memory: far less overhead per step.
        self.store = self.data.numpy() if device.type == "cpu" else self.data
        self.stage_on_host = device.type != "cpu" if stage_on_host is None else stage_on_host
        self.staged: list[np.ndarray] = []
        self.staged_rows, self.stage_limit = 0, min(capacity, 1024)  # a flush never writes more than capacity

    @staticmethod
    def row_size(obs_dim: int) -> int:
        return 2 * obs_dim + 3

    @staticmethod
    def nbytes(capacity: int, obs_dim: int) -> int:
        return capacity * ReplayBuffer.row_size(obs_dim) * 4

    def add(self, obs, next_obs, actions, rewards, terminated) -> None:
        """Store n transitions (arrays with a leading env axis); the oldest are overwritten first."""
        rows = np.concatenate(
            (obs, next_obs, actions[:, None], rewards[:, None], terminated[:, None]), axis=1, dtype=np.float32
        )
        n = len(rows)
        assert rows.shape == (n, self.data.shape[1]) and n <= self.capacity
        if not self.stage_on_host:
            self._write(rows)
            return
        if self.staged_rows + n > self.stage_limit:
            self.flush()
        self.staged.append(rows)
        self.staged_rows += n

    def flush(self) -> None:
        """Write the rows staged on the host into the buffer (sampling and saving do it first)."""
        if self.staged:
            self._write(np.concatenate(self.staged))
            self.staged, self.staged_rows = [], 0

    def _write(self, rows: np.ndarray) -> None:
        n = len(rows)
        if self.device.type != "cpu":
            rows = torch.from_numpy(rows).to(self.device)
        first = min(n, self.capacity - self.pos)  # rows that fit before the end; the rest wrap to the start
        self.store[self.pos : self.pos + first] = rows[:first]
        self.store[: n - first] = rows[first:]
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """A batch on `device`, the learner's: a buffer too big for the GPU stays on the host and copies each batch."""
        self.flush()
        rows = self.data[torch.randint(self.size, (batch_size,), device=self.device, generator=generator)].to(device)
        d = self.obs_dim
        return {
            "obs": rows[:, :d],
            "next_obs": rows[:, d : 2 * d],
            "actions": rows[:, 2 * d].long(),
            "rewards": rows[:, 2 * d + 1],
            "terminated": rows[:, 2 * d + 2],
        }

    def state_dict(self) -> dict:
        self.flush()
        return {"pos": self.pos, "size": self.size, "data": self.data[: self.size].cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.staged, self.staged_rows = [], 0
        self.pos, self.size = state["pos"], state["size"]
        self.data[: self.size] = state["data"].to(self.device)


def available_memory(device: torch.device) -> int:
    """Free bytes on `device`: CUDA's own count, or MemAvailable of the host."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def validate_args(args: Args) -> str | None:
    """The first problem with the flags, as one line naming the flag, its value and what is allowed."""
    positive = ("total_timesteps", "num_envs", "buffer_size", "batch_size", "target_network_frequency")
    positive += ("train_frequency", "eval_episodes")
    for name in positive:
        if getattr(args, name) <= 0:
            return f"--{name.replace('_', '-')} {getattr(args, name)}: must be a positive integer"
    for name in ("learning_starts", "checkpoint_frequency"):
        if getattr(args, name) < 0:
            return f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 0"
    if not args.exp_name or os.path.basename(args.exp_name) != args.exp_name:
        return f"--exp-name {args.exp_name!r}: must be a plain name, no '/' (it names the run's folder and files)"
    if not 0 <= args.seed < 2**32:
        return f"--seed {args.seed}: must be in [0, 2**32 - 1] (numpy's seeding)"
    if not args.learning_rate > 0:
        return f"--learning-rate {args.learning_rate}: must be > 0"
    if not 0 <= args.lr_decay_fraction <= 1:
        return f"--lr-decay-fraction {args.lr_decay_fraction}: must be in [0, 1] (0: a constant learning rate)"
    if not args.max_grad_norm >= 0:
        return f"--max-grad-norm {args.max_grad_norm}: must be >= 0 (0: no clipping)"
    if not args.hidden_sizes or not all(width > 0 for width in args.hidden_sizes):
        widths = " ".join(map(str, args.hidden_sizes)) or "(none given)"
        return f"--hidden-sizes {widths}: must be one or more positive integers (the hidden layers' widths)"
    for name in ("batch_size", "num_envs"):  # one env step stores num_envs rows
        if getattr(args, name) > args.buffer_size:
            return f"--{name.replace('_', '-')} {getattr(args, name)}: must be <= --buffer-size ({args.buffer_size})"
    if args.learning_starts >= args.total_timesteps:
        return f"--learning-starts {args.learning_starts}: must be < --total-timesteps ({args.total_timesteps})"
    if not 0 <= args.gamma <= 1:
        return f"--gamma {args.gamma}: must be in [0, 1]"
    if not 0 < args.tau <= 1:
        return f"--tau {args.tau}: must be in (0, 1]"
    for name in ("start_e", "end_e", "eval_epsilon"):
        if not 0 <= getattr(args, name) <= 1:
            return f"--{name.replace('_', '-')} {getattr(args, name)}: must be in [0, 1]"
    if args.end_e > args.start_e:
        return f"--end-e {args.end_e}: must be <= --start-e ({args.start_e})"
    if not 0 < args.exploration_fraction <= 1:
        return f"--exploration-fraction {args.exploration_fraction}: must be in (0, 1]"
    return None


def check_env(env_id: str) -> str | None:
    """Build the env once and check it is one this script can learn: Discrete actions, flat Box observations."""
    try:
        env = gym.make(env_id)
    except (gym.error.Error, ImportError, AttributeError, ValueError) as e:
        atari = "ALE/" in env_id or "NoFrameskip" in env_id  # registered only when dqn_atari.py imports ale_py
        return f"--env-id {env_id}: cannot make this env ({type(e).__name__}: {e})" + (
            "; for Atari use dqn_atari.py" if atari else ""
        )
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(act_space, gym.spaces.Discrete):
        return f"--env-id {env_id}: action space {act_space} is not Discrete; DQN needs Discrete actions"
    if act_space.start != 0:  # actions here are the Q-network's output indices, 0 .. n-1
        return f"--env-id {env_id}: action space {act_space} does not start at 0; only Discrete(n) is supported"
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        return f"--env-id {env_id}: observation space {obs_space} is not a flat Box (for Atari use dqn_atari.py)"
    return None


def fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2, nothing created."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


class MetricLogger:
    """Writes every metric to `metrics.csv` (global_step,wall_time,metric,value) and to wandb when tracking."""

    def __init__(self, path: str, start_time: float, wandb_run=None):
        new_file = not os.path.exists(path)
        self.file = open(path, "a", newline="")
        self.writer = csv.writer(self.file)
        if new_file:
            self.writer.writerow(("global_step", "wall_time", "metric", "value"))
        self.start_time, self.wandb_run = start_time, wandb_run

    def log(self, step: int, metrics: dict[str, float]) -> None:
        wall_time = round(time.time() - self.start_time, 3)
        self.writer.writerows((step, wall_time, name, value) for name, value in metrics.items())
        self.file.flush()
        if self.wandb_run is not None:
            self.wandb_run.log({**metrics, "global_step": step})

    def close(self) -> None:
        self.file.close()


class Progress:
    """One status line: rewritten in place on a terminal, a new line every 10 s when output goes to a file."""

    def __init__(self, total: int):
        self.total, self.tty = total, sys.stdout.isatty()
        self.interval, self.last = (0.25 if self.tty else 10.0), 0.0

    def update(self, step: int, sps: float, epsilon: float, recent_returns: list[float], force: bool = False):
        now = time.time()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        mean_return = f"{np.mean(recent_returns):8.2f}" if recent_returns else "       -"
        line = (
            f"step {step:>10,}/{self.total:,} ({100 * step / self.total:3.0f}%) | {sps:7,.0f} SPS | "
            f"eps {epsilon:.3f} | return (last 20) {mean_return}"
        )
        print(("\r" + line) if self.tty else line, end="" if self.tty and not force else "\n", flush=True)


def greedy_actions(q_network: nn.Module, obs: np.ndarray, device: torch.device) -> np.ndarray:
    """argmax_a Q(obs, a) for a batch of observations, through torch."""
    with torch.inference_mode():
        q_values = q_network(torch.as_tensor(obs, dtype=torch.float32, device=device))
        return q_values.argmax(dim=1).cpu().numpy()


def numpy_greedy(q_network: nn.Module, obs_dim: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """`greedy_actions` computed by NumPy on views of a CPU network's weights, or None where it cannot be.

    Why: for a few observations, torch's fixed cost per call is most of the cost of an action; NumPy's is a
    fraction of it (README, Results). The views share memory with the parameters, so every optimizer step is
    seen at once. Q-values equal torch's up to float rounding. It handles a QNetwork whose parameters all lie
    in `network`, an `nn.Sequential` of float32 Linear and ReLU layers, and is checked once, at the start,
    against the torch network on random inputs; any other QNetwork (another layer, parameters or buffers
    outside `network`, a `forward` that gives other values there) gets None, and torch acts.
    """
    network = getattr(q_network, "network", None)
    if not isinstance(network, nn.Sequential) or list(q_network.buffers()):
        return None
    if {id(p) for p in q_network.parameters()} != {id(p) for p in network.parameters()}:
        return None
    layers = []  # (weight^T, bias) for a Linear, None for a ReLU
    for layer in network:
        if isinstance(layer, nn.Linear) and layer.bias is not None and layer.weight.device.type == "cpu":
            if layer.weight.dtype != torch.float32:
                return None
            layers.append((layer.weight.detach().numpy().T, layer.bias.detach().numpy()))
        elif isinstance(layer, nn.ReLU):
            layers.append(None)
        else:
            return None

    def q_values(obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=np.float32)
        for layer in layers:
            x = np.maximum(x, 0.0) if layer is None else x @ layer[0] + layer[1]
        return x

    probe = np.random.default_rng(0).standard_normal((64, obs_dim), dtype=np.float32)
    with torch.no_grad():
        expected = q_network(torch.from_numpy(probe)).numpy()
    got = q_values(probe)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-4, atol=1e-5):
        return None
    return lambda obs: q_values(obs).argmax(axis=1)


def evaluate(model_path: str, args: Args, device: torch.device, run_name: str) -> list[float]:
    """Play `eval_episodes` episodes with the saved weights (epsilon-greedy at `eval_epsilon`); their returns."""
    env = gym.vector.SyncVectorEnv([make_env(args.env_id, 0, False, run_name)], autoreset_mode=AutoresetMode.SAME_STEP)
    q_network = QNetwork(env.single_observation_space.shape[0], env.single_action_space.n, args.hidden_sizes).to(device)
    q_network.load_state_dict(torch.load(model_path, map_location=device, weights_only=True))
    rng = np.random.default_rng(args.seed + 1)
    obs, _ = env.reset(seed=args.seed + 1)
    returns, episode_return = [], 0.0
    while len(returns) < args.eval_episodes:
        actions = greedy_actions(q_network, obs, device)
        if rng.random() < args.eval_epsilon:
            actions = rng.integers(env.single_action_space.n, size=1)
        obs, rewards, terminations, truncations, _ = env.step(actions)
        episode_return += float(rewards[0])
        if terminations[0] or truncations[0]:
            returns.append(episode_return)
            episode_return = 0.0
    env.close()
    return returns


if __name__ == "__main__":
    args = tyro.cli(Args)
    checkpoint = None
    if args.resume is not None:
        try:
            with warnings.catch_warnings():  # a foreign pickle's protocol warning would break the one-line error
                warnings.simplefilter("ignore")
                checkpoint = torch.load(args.resume, map_location="cpu", weights_only=True)
        except OSError as e:
            fail(f"--resume {args.resume}: cannot read a checkpoint there ({type(e).__name__}: {e})")
        # What torch.load raised for files of other kinds (text, bytes, foreign pickles; measured by fuzzing it)
        except (pickle.UnpicklingError, RuntimeError, EOFError, KeyError, IndexError, ValueError, struct.error) as e:
            fail(f"--resume {args.resume}: not a checkpoint torch.load(weights_only=True) reads ({type(e).__name__})")
        try:
            saved, names = checkpoint["args"], [f.name for f in fields(Args)]
            if checkpoint.get("script") != SCRIPT:  # a sibling's checkpoint has the same flags
                written_by = checkpoint.get("script", "a version of the scripts that did not record it")
                fail(f"--resume {args.resume}: a checkpoint of {written_by}, not of {SCRIPT}; start a new run")
            if unknown := sorted(set(saved) - set(names)):
                fail(f"--resume {args.resume}: not a checkpoint of this script (it records {', '.join(unknown)})")
            if missing := [f"--{n.replace('_', '-')}" for n in names if n not in saved and n not in SESSION_FLAGS]:
                fail(f"--resume {args.resume}: written before this script had {' '.join(missing)}; start a new run")
            # The command line again, over the checkpoint's values: an algorithm flag that differs was given another
            # value, which the run would ignore without a word; it is refused instead.
            args = tyro.cli(Args, default=Args(**{**saved, **{name: getattr(args, name) for name in SESSION_FLAGS}}))
            if changed := [n for n in names if n not in SESSION_FLAGS and getattr(args, n) != saved[n]]:
                given = ", ".join(
                    f"--{n.replace('_', '-')} {getattr(args, n)} (the checkpoint's: {saved[n]})" for n in changed
                )
                fail(f"--resume {args.resume}: {given}; a resumed run keeps its flags, start a new run to change them")
        except (KeyError, TypeError, IndexError) as e:
            fail(f"--resume {args.resume}: not a checkpoint of this script ({type(e).__name__}: {e})")
    if (problem := validate_args(args) or check_env(args.env_id)) is not None:
        fail(problem)

    device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
    probe = gym.make(args.env_id)
    obs_dim, n_actions = probe.observation_space.shape[0], probe.action_space.n
    probe.close()
    # Keep the buffer on the GPU when it fits, so sampling never copies from the host.
    buffer_bytes = ReplayBuffer.nbytes(args.buffer_size, obs_dim)
    buffer_device = device if buffer_bytes < 0.8 * available_memory(device) else torch.device("cpu")
    if buffer_bytes >= 0.8 * available_memory(buffer_device):
        fail(
            f"--buffer-size {args.buffer_size}: the replay buffer needs {buffer_bytes:,} bytes, "
            f"more than 80% of the {available_memory(buffer_device):,} bytes available"
        )
    print(f"device: {device}" + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))

    # Seeding: one seed feeds every stream. No CUBLAS_WORKSPACE_CONFIG: torch >= 2.10 keeps cuBLAS deterministic
    # without it (pytorch#161749), and on an H100 it made each small matmul about 4x slower (README).
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic
    torch.use_deterministic_algorithms(args.torch_deterministic and device.type == "cuda")
    explore_rng = np.random.default_rng(args.seed)
    sample_generator = torch.Generator(device=buffer_device).manual_seed(args.seed)

    if checkpoint:
        run_name, run_dir = checkpoint["run_name"], os.path.dirname(os.path.abspath(args.resume))
    else:  # a folder of its own: a run of the same name started in the same second (a sweep) takes the next second
        unix_time = int(time.time())
        while True:
            run_name = f"{args.env_id}__{args.exp_name}__{args.seed}__{unix_time}"
            run_dir = f"runs/{run_name}"
            try:
                os.makedirs(run_dir)
                break
            except FileExistsError:
                unix_time += 1
    wandb_run = None
    if args.track:
        import wandb

        wandb_run = wandb.init(
            project=args.wandb_project_name,
            entity=args.wandb_entity,
            config=vars(args),
            name=run_name,
            id=checkpoint["wandb_id"] if checkpoint and checkpoint["wandb_id"] else None,
            resume="allow",
            save_code=True,
        )
        wandb_run.define_metric("*", step_metric="global_step")

    # A resumed run records into a folder of its own: RecordVideo numbers episodes from 0 again.
    video_name = run_name + (f"/resumed_at_{checkpoint['counters']['global_step']}" if checkpoint else "")
    # SAME_STEP autoreset: a finished env is reset inside step(); its true final obs comes in infos["final_obs"].
    envs = gym.vector.SyncVectorEnv(
        [make_env(args.env_id, i, args.capture_video, video_name) for i in range(args.num_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), "only Discrete action spaces are supported"

    q_network = QNetwork(obs_dim, n_actions, args.hidden_sizes).to(device)
    optimizer = torch.optim.Adam(
        q_network.parameters(), lr=args.learning_rate, amsgrad=args.amsgrad, fused=device.type in ("cpu", "cuda")
    )
    target_network = QNetwork(obs_dim, n_actions, args.hidden_sizes).to(device)
    target_network.load_state_dict(q_network.state_dict())
    rb = ReplayBuffer(args.buffer_size, obs_dim, buffer_device)

    counters = {"global_step": 0, "gradient_steps": 0, "target_updates": 0, "episodes": 0, "elapsed": 0.0}
    counters["learning_start_step"] = args.learning_starts
    if checkpoint is not None:
        q_network.load_state_dict(checkpoint["q_network"])
        target_network.load_state_dict(checkpoint["target_network"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        counters = checkpoint["counters"]
        torch.set_rng_state(checkpoint["torch_rng"])
        explore_rng.bit_generator.state = checkpoint["explore_rng"]
        try:
            sample_generator.set_state(checkpoint["sample_rng"])
        except RuntimeError:  # the state of a generator on another device: the buffer was elsewhere (--cuda changed)
            print("note: the replay buffer is on another device than before; replay sampling draws afresh")
        if "buffer" in checkpoint:
            rb.load_state_dict(checkpoint["buffer"])
        else:  # refill the empty buffer before training again
            counters["learning_start_step"] = counters["global_step"] + args.learning_starts
        print(f"resumed {run_name} at env step {counters['global_step']:,}")

    # On the CPU, NumPy picks the greedy action for a fraction of torch's cost (see numpy_greedy).
    greedy = numpy_greedy(q_network, obs_dim)
    print(f"greedy actions: {'NumPy (numpy_greedy)' if greedy else 'torch'}")
    greedy = greedy or (lambda o: greedy_actions(q_network, o, device))

    def save_checkpoint() -> str:
        path = f"{run_dir}/checkpoint.pt"
        state = {
            "script": SCRIPT,
            "args": asdict(args) | {"resume": None},
            "run_name": run_name,
            "wandb_id": wandb_run.id if wandb_run is not None else None,
            "counters": counters | {"elapsed": counters["elapsed"] + time.time() - start_time},
            "q_network": q_network.state_dict(),
            "target_network": target_network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "explore_rng": explore_rng.bit_generator.state,
            "sample_rng": sample_generator.get_state(),
        }
        if args.checkpoint_buffer:
            state["buffer"] = rb.state_dict()
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)  # a crash while writing never leaves a broken checkpoint
        return path

    stop_signal = None

    def request_stop(signum, frame):
        global stop_signal
        stop_signal = signum

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    start_time = time.time()
    start_step = global_step = counters["global_step"]
    logger = MetricLogger(f"{run_dir}/metrics.csv", start_time - counters["elapsed"], wandb_run)
    progress = Progress(args.total_timesteps)
    recent_returns: list[float] = []
    episode_returns = np.zeros(args.num_envs)
    episode_lengths = np.zeros(args.num_envs, dtype=np.int64)
    exit_code, sps, epsilon = 0, 0.0, args.start_e
    try:
        # A resumed run restarts the episodes that were in progress, from seeds that depend on the step.
        obs, _ = envs.reset(seed=args.seed + global_step)
        while global_step < args.total_timesteps and stop_signal is None:
            # Epsilon-greedy; the network runs only when some env exploits.
            epsilon = linear_schedule(
                args.start_e, args.end_e, args.exploration_fraction * args.total_timesteps, global_step
            )
            explore, actions = explore_actions(explore_rng.random(args.num_envs), epsilon, n_actions)
            if not explore.all():
                actions = np.where(explore, actions, greedy(obs))

            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            prev_step, global_step = global_step, global_step + args.num_envs
            episode_returns += rewards
            episode_lengths += 1
            dones = terminations | truncations
            real_next_obs = next_obs
            if dones.any():
                real_next_obs = next_obs.copy()  # store the true final observation, not the reset one
                for i in np.flatnonzero(dones):
                    real_next_obs[i] = infos["final_obs"][i]
                    logger.log(
                        global_step,
                        {"charts/episodic_return": episode_returns[i], "charts/episodic_length": episode_lengths[i]},
                    )
                    recent_returns = (recent_returns + [float(episode_returns[i])])[-20:]
                    counters["episodes"] += 1
                    episode_returns[i], episode_lengths[i] = 0.0, 0
            rb.add(obs, real_next_obs, actions, rewards, terminations)
            obs = next_obs

            for _ in range(events_due(prev_step, global_step, args.train_frequency, counters["learning_start_step"])):
                batch = rb.sample(args.batch_size, sample_generator, device)
                with torch.no_grad():
                    next_values = next_state_value(q_network, target_network, batch["next_obs"])
                    targets = td_target(batch["rewards"], batch["terminated"], next_values, args.gamma)
                q_taken = q_network(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
                loss = F.smooth_l1_loss(q_taken, targets)  # Huber: the paper's error clipping
                if not math.isfinite(loss_value := loss.item()):
                    raise FloatingPointError(f"non-finite TD loss ({loss_value}) at env step {global_step:,}")
                optimizer.zero_grad()
                loss.backward()
                if args.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(q_network.parameters(), args.max_grad_norm)
                lr = learning_rate_at(args.learning_rate, args.lr_decay_fraction, args.total_timesteps, global_step)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                optimizer.step()
                counters["gradient_steps"] += 1
                if counters["gradient_steps"] % 100 == 1:
                    logger.log(global_step, {"losses/td_loss": loss_value, "losses/q_values": q_taken.mean().item()})

            for _ in range(
                events_due(prev_step, global_step, args.target_network_frequency, counters["learning_start_step"])
            ):
                soft_update(target_network, q_network, args.tau)
                counters["target_updates"] += 1

            counters["global_step"] = global_step
            sps = (global_step - start_step) / max(time.time() - start_time, 1e-9)
            if events_due(prev_step, global_step, 100):
                lr = optimizer.param_groups[0]["lr"]
                logger.log(global_step, {"charts/epsilon": epsilon, "charts/learning_rate": lr, "charts/SPS": sps})
            if args.checkpoint_frequency and events_due(prev_step, global_step, args.checkpoint_frequency):
                save_checkpoint()
            progress.update(global_step, sps, epsilon, recent_returns, force=global_step >= args.total_timesteps)
    except FloatingPointError as e:
        print(f"\nerror: {e}", file=sys.stderr)
        exit_code = 1
    finally:
        envs.close()

    def stop_now(signum, frame):
        global stop_signal
        stop_signal = signum
        raise KeyboardInterrupt

    # Training is over: a signal from here on stops the script at once (there is nothing more to checkpoint).
    signal.signal(signal.SIGINT, stop_now)
    signal.signal(signal.SIGTERM, stop_now)
    try:
        if stop_signal is not None and exit_code == 0:  # it came during training, perhaps in its last step
            path = save_checkpoint()
            print(f"\nstopped by signal {stop_signal} at env step {global_step:,}; checkpoint: {path}")
            exit_code = 128 + stop_signal
        elapsed = time.time() - start_time
        print(
            f"done: {global_step:,} env steps, {counters['gradient_steps']:,} gradient steps, "
            f"{counters['target_updates']:,} target updates, {counters['episodes']:,} episodes in {elapsed:.1f} s"
        )
        if exit_code == 0 and args.save_model:
            model_path = f"{run_dir}/{args.exp_name}.pt"
            torch.save(q_network.state_dict(), model_path)
            print(f"model saved to {model_path}")
            eval_returns = evaluate(model_path, args, device, run_name)
            for r in eval_returns:
                logger.log(global_step, {"eval/episodic_return": r})
            mean, std = np.mean(eval_returns), np.std(eval_returns)
            print(f"eval: mean return {mean:.2f} +- {std:.2f} over {len(eval_returns)} episodes")
    except KeyboardInterrupt:
        print(f"\nstopped by signal {stop_signal} after training")
        exit_code = 128 + stop_signal
    logger.close()
    if wandb_run is not None:
        wandb_run.finish(exit_code=exit_code)
    sys.exit(exit_code)
