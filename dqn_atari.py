"""DQN with the Nature CNN on Atari: a single-file research baseline, made for the GPU, runnable on a CPU.

Algorithm: DQN, Mnih et al. 2015, "Human-level control through deep reinforcement learning", Nature 518.
TD target: r + gamma * max_a Q_target(s', a).
Siblings: this is `dqn.py` with the Nature CNN, Atari preprocessing and a frame-sharing replay memory.

Experience replay, an epsilon-greedy behaviour policy on a linear schedule, and a target network updated
by Polyak averaging (tau = 1 is the paper's hard copy). The target bootstraps unless the episode
*terminated* (a life loss counts, as in the paper): a time-limit truncation bootstraps from the true final
observation. Preprocessing (Stable-Baselines3's AtariWrapper): up to 30 no-ops at reset, frame-skip 4 with
a max over the last two frames, life loss as episode end for learning, fire on reset where the game needs
it, rewards clipped to their sign, grayscale 84x84; then a 4-frame stack (gymnasium's FrameStackObservation).
`charts/episodic_return` is the whole game's raw score (all lives, unclipped), as published tables report it.

Replay memory: each 84x84 frame is stored once (about 7.1 KB per transition instead of CleanRL's 28 KB for
two full stacks) and stacks are rebuilt when sampling; see `FrameReplayBuffer`.
On a GPU, action choice and gradient step are CUDA graphs (`CudaGraphed`): the eager loop is CPU-bound.
Departures from CleanRL's dqn_atari.py: the Huber loss (the paper's error clipping), `--num-envs N` for any N,
same-step autoreset, the replay memory above, CUDA graphs, `--async-envs`, metrics.csv beside wandb,
checkpoint/resume and input validation.
Contract: SPEC.md; flags, metrics and results: README.md.
One departure from SPEC: a flag value of the wrong type (`--num-envs abc`) is refused by tyro, in a box of several
lines rather than one (exit code 2, nothing created).
"""

import csv
import os
import pickle
import random
import signal
import struct
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields

import ale_py
import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.atari_wrappers import AtariWrapper

gym.register_envs(ale_py)
ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner before the device line


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
    the device"""
    cuda_graphs: bool = True
    """if True, on CUDA, replay action choice and gradient step as CUDA graphs (after 3 eager warm-up calls); on by
    default: the same arithmetic with less launch overhead (README, Atari figures on a GPU)"""
    async_envs: bool = False
    """if True, step the envs in subprocesses (gymnasium's AsyncVectorEnv): same results, faster with several envs
    (off by default: CleanRL's single env needs no subprocess)"""
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
    """write `runs/{run_name}/checkpoint.pt` every this many env steps; 0 (the default, as a run's length is the
    user's to choose): only on Ctrl-C / SIGTERM"""
    checkpoint_buffer: bool = False
    """if True, checkpoints include the replay buffer (training goes straight on after a resume, with the same
    replay; the file grows by the buffer's size). Off by default: without it a resumed run refills the buffer for
    `learning_starts` env steps before training again"""
    resume: str | None = None
    """checkpoint to continue from (None, the default: a new run); exp_name, seed, env and algorithm flags come from
    it (giving one of them another value is refused), the other flags above this one do not"""

    # --- algorithm ---
    env_id: str = "BreakoutNoFrameskip-v4"
    """gymnasium id of an ALE game without frame-skip of its own, `*NoFrameskip-v4` (CleanRL's default game); `ALE/*-v5`
    ids skip 4 frames themselves and are refused"""
    total_timesteps: int = 10_000_000
    """env steps (agent steps, 4 frames each) of training, summed over all envs (CleanRL's default)"""
    learning_rate: float = 1e-4
    """Adam learning rate (CleanRL's default)"""
    num_envs: int = 1
    """parallel envs; all step counts here are summed over them"""
    buffer_size: int = 1_000_000
    """replay capacity in frame slots, about one per transition (an episode's end takes one more), shared evenly by
    the envs (CleanRL's default; ~7.1 KB each)"""
    gamma: float = 0.99
    """discount factor (CleanRL's default)"""
    tau: float = 1.0
    """target update rate: target <- tau * online + (1 - tau) * target; 1 is a hard copy (CleanRL's default)"""
    target_network_frequency: int = 1000
    """env steps between target updates (CleanRL's default)"""
    batch_size: int = 32
    """transitions per gradient step (CleanRL's default)"""
    start_e: float = 1.0
    """exploration rate at the start of training (CleanRL's default)"""
    end_e: float = 0.01
    """exploration rate at the end of the schedule (CleanRL's default)"""
    exploration_fraction: float = 0.10
    """fraction of `total_timesteps` over which epsilon falls linearly from start_e to end_e (CleanRL's default)"""
    learning_starts: int = 80_000
    """env steps before the first gradient step, acting epsilon-greedy meanwhile (CleanRL's default)"""
    train_frequency: int = 4
    """env steps between gradient steps (CleanRL's default)"""
    max_grad_norm: float = 0.0
    """max global L2 norm of the gradient, rescaled before each Adam step; 0: off (CleanRL's default; SB3 10)"""


# Flags a resumed run takes from the command line (the infrastructure flags but exp_name and seed); the others
# come from the checkpoint, so the run goes on as it started.
SESSION_FLAGS = ("torch_deterministic", "cuda", "cuda_graphs", "async_envs", "track", "wandb_project_name")
SESSION_FLAGS += ("wandb_entity", "capture_video", "save_model", "eval_episodes", "eval_epsilon")
SESSION_FLAGS += ("checkpoint_frequency", "checkpoint_buffer", "resume")
SCRIPT = os.path.basename(__file__)  # recorded in checkpoints: a resume refuses another script's


def make_env(env_id: str, idx: int, capture_video: bool, run_name: str):
    """Return a thunk that builds env `idx`: raw game statistics, then the DQN preprocessing, then a 4-frame stack."""

    def thunk():
        if capture_video and idx == 0:
            env = gym.make(env_id, render_mode="rgb_array")
            env = gym.wrappers.RecordVideo(env, f"videos/{run_name}")
        else:
            env = gym.make(env_id)
        env = gym.wrappers.RecordEpisodeStatistics(env)  # below the life-loss wrapper: whole games, raw scores
        env = AtariWrapper(env)  # no-ops, skip 4 + max, life loss, fire, clip, 84x84 grayscale (84, 84, 1)
        env = gym.wrappers.ReshapeObservation(env, (84, 84))
        return gym.wrappers.FrameStackObservation(env, 4)  # pads a new episode's stack with its first frame

    return thunk


class QNetwork(nn.Module):
    """The Nature CNN: uint8 frame stacks (scaled by 1/255) to one Q-value per action."""

    def __init__(self, stack: int, n_actions: int):
        super().__init__()
        self.network = nn.Sequential(
            nn.Conv2d(stack, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(3136, 512),
            nn.ReLU(),
            nn.Linear(512, n_actions),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x / 255.0)


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


def events_due(prev_step: int, step: int, every: int, start: int = 0) -> int:
    """Number of multiples of `every` in (max(prev_step, start), step].

    The env step counter moves by num_envs at a time; counting the multiples it crosses (instead of
    testing `step % every == 0`) keeps every schedule in env steps whatever num_envs is.
    """
    low = max(prev_step, start)
    return max(0, step // every - low // every)


def next_state_value(q_network: nn.Module, target_network: nn.Module, next_obs: torch.Tensor) -> torch.Tensor:
    """DQN's value of s': max_a Q_target(s', a)."""
    return target_network(next_obs).max(dim=1).values


def td_target(rewards: torch.Tensor, terminated: torch.Tensor, next_values: torch.Tensor, gamma: float):
    """r + gamma * V(s'), with no bootstrap after a termination (a truncation does bootstrap)."""
    assert rewards.shape == terminated.shape == next_values.shape and rewards.ndim == 1
    return rewards + gamma * next_values * (1.0 - terminated)


def soft_update(target_network: nn.Module, q_network: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target; exact copy when tau == 1."""
    with torch.no_grad():
        for target_param, param in zip(target_network.parameters(), q_network.parameters(), strict=True):
            target_param.lerp_(param, tau)


def true_next_obs(next_obs: np.ndarray, dones: np.ndarray, infos: dict) -> np.ndarray:
    """next_obs with each finished env's reset observation replaced by its true final one (same-step autoreset)."""
    if not dones.any():
        return next_obs
    real = next_obs.copy()
    for i in np.flatnonzero(dones):
        real[i] = infos["final_obs"][i]
    return real


class FrameReplayBuffer:
    """Replay memory that stores each frame once and rebuilds the frame stacks when sampling.

    Each env has a ring of `capacity // num_envs` slots. A slot holds the newest frame of one observation and,
    once the frame that follows is stored, the transition that left it (action, reward, terminated). After an
    episode's last transition comes one extra slot with the newest frame of the *true final* observation, never
    sampled as a start; the next episode begins in the slot after it. So no transition spans a reset, and a
    truncated step bootstraps from its real final observation (CleanRL's memory-saving buffer does not: its
    issue 460). A stack is the frames of slots j-3..j, each clamped to the episode's first slot: the same
    "reset" padding as gymnasium's FrameStackObservation, so sampled stacks equal the env's byte for byte.

    The frames (7,056 of the 7,074 bytes a slot takes) live on `device`, the GPU when they fit; the rest is
    NumPy on the host, where `sample` draws transitions without a device round trip. A batch then travels as
    one small array of rows (`sample`), from which `gather` picks the frames on the device.
    """

    def __init__(self, capacity: int, num_envs: int, stack: int, frame_shape: tuple, device: torch.device):
        self.slots, self.stack, self.device = capacity // num_envs, stack, device
        shape = (num_envs, self.slots)
        self.frames = torch.zeros((*shape, *frame_shape), dtype=torch.uint8, device=device)
        self.actions = np.zeros(shape, dtype=np.int32)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.starts_transition = np.zeros(shape, dtype=bool)
        self.episode_start = np.zeros(shape, dtype=np.int64)  # absolute slot number
        self.written = np.zeros(num_envs, dtype=np.int64)  # slots written so far, per env (absolute)
        self.current_start = np.zeros(num_envs, dtype=np.int64)  # absolute first slot of each env's episode

    @staticmethod
    def nbytes(capacity: int, frame_shape: tuple) -> int:
        """Bytes the storage takes: one uint8 frame and 18 bytes of transition data per slot."""
        return capacity * (int(np.prod(frame_shape)) + 4 + 4 + 1 + 1 + 8)

    def _write(self, envs: np.ndarray, frames: np.ndarray) -> None:
        """Append one frame to each of `envs`, in the episode `current_start` says; not yet a transition."""
        slots = self.written[envs] % self.slots
        for env, slot, frame in zip(envs, slots, frames, strict=True):
            self.frames[env, slot] = torch.from_numpy(frame)  # one plain copy each: no index kernels on the GPU
        self.episode_start[envs, slots] = self.current_start[envs]
        self.starts_transition[envs, slots] = False
        self.written[envs] += 1

    def start(self, frames: np.ndarray) -> None:
        """Begin an episode in every env with the newest frames of their first observations."""
        envs = np.arange(len(frames))
        self.current_start[envs] = self.written[envs]
        self._write(envs, frames)

    def add(self, actions, rewards, terminated, dones, final_frames: np.ndarray, next_frames: np.ndarray) -> None:
        """One vector step: each env's transition, then the newest frame of its next observation.

        final_frames: newest frames of the true next observations; next_frames: those the envs returned
        (the reset ones where `dones`). Where an episode ended, its final frame gets a slot of its own.
        """
        envs = np.arange(len(actions))
        slots = (self.written - 1) % self.slots
        self.actions[envs, slots] = actions
        self.rewards[envs, slots] = rewards
        self.terminated[envs, slots] = terminated
        self.starts_transition[envs, slots] = True
        ended = np.flatnonzero(dones)
        if ended.size:
            self._write(ended, final_frames[ended])
            self.current_start[ended] = self.written[ended]
        self._write(envs, next_frames)

    def sample(self, batch_size: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform over the stored transitions whose frames are all still in memory, with replacement.

        Returns float64 rows (exact for these integers): env, absolute slot j, the stack+1 ring slots of the
        frames of s and then of s' newest, action, reward, terminated. `gather` turns them into a batch.
        """
        low = np.maximum(self.written - self.slots + self.stack - 1, 0)  # frames j-3.. must not be overwritten
        high = self.written - 2  # slot j + 1 must be written
        assert (high >= low).all(), "sample() before every env has stored a transition"
        envs = rng.integers(len(self.written), size=batch_size)
        j = rng.integers(low[envs], high[envs] + 1)
        while (redraw := ~self.starts_transition[envs, j % self.slots]).any():
            j[redraw] = rng.integers(low[envs[redraw]], high[envs[redraw]] + 1)  # a final frame, not a transition
        first = self.episode_start[envs, j % self.slots]
        frame_slots = np.maximum(j[:, None] + np.arange(-(self.stack - 1), 2), first[:, None]) % self.slots
        slot = j % self.slots
        data = (self.actions[envs, slot], self.rewards[envs, slot], self.terminated[envs, slot])
        return np.column_stack([envs, j, frame_slots, *data]).astype(np.float64)

    def gather(self, rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """The batch of `sample`'s rows (a tensor on the frames' device): stacks rebuilt from the frames."""
        assert rows.shape[1] == self.stack + 6, rows.shape
        envs, frame_slots = rows[:, 0].long(), rows[:, 2 : self.stack + 3].long()
        frames = self.frames[envs[:, None], frame_slots]
        return {
            "obs": frames[:, :-1],
            "next_obs": frames[:, 1:],
            "actions": rows[:, -3].long(),
            "rewards": rows[:, -2].float(),
            "terminated": rows[:, -1].float(),
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        names = ("actions", "rewards", "terminated", "starts_transition", "episode_start", "written", "current_start")
        return {"frames": self.frames.cpu()} | {name: torch.from_numpy(getattr(self, name)) for name in names}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.frames.copy_(state["frames"])
        for name, value in state.items():
            if name != "frames":
                setattr(self, name, value.numpy().copy())


class CudaGraphed:
    """Calls fn(*inputs); on CUDA it captures fn once as a CUDA graph, after `warmup` eager calls, then replays it.

    A gradient step launches dozens of small kernels, an action choice about a dozen; launching them costs the
    CPU more time than the GPU spends running them, so a loop of eager steps is CPU-bound. A replay launches them
    all at once.
    Each call copies the inputs (host tensors) into static device tensors; the outputs are static too, so read
    them before the next call. Warm-up calls do real work, on a side stream (as PyTorch's CUDA-graph notes ask).
    """

    def __init__(self, fn, device: torch.device, enabled: bool, warmup: int = 3):
        self.fn, self.device, self.warmup = fn, device, warmup
        self.enabled = enabled and device.type == "cuda"
        self.graph = None

    def __call__(self, *inputs: torch.Tensor):
        if not self.enabled:
            return self.fn(*(x.to(self.device) for x in inputs))
        if self.graph is None and self.warmup > 0:
            self.warmup -= 1
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                outputs = self.fn(*(x.to(self.device) for x in inputs))
            torch.cuda.current_stream(self.device).wait_stream(side)
            return outputs
        if self.graph is None:
            self.static_inputs = [x.to(self.device, copy=True) for x in inputs]
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.static_outputs = self.fn(*self.static_inputs)
        for static, x in zip(self.static_inputs, inputs, strict=True):
            static.copy_(x)
        self.graph.replay()
        return self.static_outputs


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
    if not args.max_grad_norm >= 0:
        return f"--max-grad-norm {args.max_grad_norm}: must be >= 0 (0: no clipping)"
    if args.batch_size > args.buffer_size:
        return f"--batch-size {args.batch_size}: must be <= --buffer-size ({args.buffer_size})"
    if args.buffer_size // args.num_envs < 8:
        return f"--buffer-size {args.buffer_size}: each of the {args.num_envs} envs needs a ring of at least 8 frames"
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
    """Build the env once and check it is an ALE game without frame-skip of its own."""
    try:
        env = gym.make(env_id)
    except (gym.error.Error, ImportError, AttributeError, ValueError) as e:
        return f"--env-id {env_id}: cannot make this env ({type(e).__name__}: {e})"
    game, act_space, obs_space = env.unwrapped, env.action_space, env.observation_space
    env.close()
    if not isinstance(game, ale_py.AtariEnv):
        return f"--env-id {env_id}: not an ALE (Atari) game; for vector observations use dqn.py"
    if not isinstance(act_space, gym.spaces.Discrete):
        return f"--env-id {env_id}: action space {act_space} is not Discrete; DQN needs Discrete actions"
    if len(obs_space.shape) != 3 or obs_space.shape[2] != 3:
        return f"--env-id {env_id}: observation space {obs_space} is not the screen in RGB (the preprocessing's input)"
    if game._frameskip != 1:
        return f"--env-id {env_id}: the game skips {game._frameskip} frames itself; use a NoFrameskip-v4 id"
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


def greedy(q_network: nn.Module, obs: torch.Tensor) -> torch.Tensor:
    """Greedy actions for a batch of uint8 stacks on the network's device (no autograd: capturable as a graph)."""
    with torch.no_grad():
        return q_network(obs).argmax(dim=1)


def evaluate(model_path: str, args: Args, device: torch.device, run_name: str) -> list[float]:
    """Play `eval_episodes` whole games with the saved weights (epsilon-greedy at `eval_epsilon`); raw scores."""
    env = gym.vector.SyncVectorEnv([make_env(args.env_id, 0, False, run_name)], autoreset_mode=AutoresetMode.SAME_STEP)
    q_network = QNetwork(env.single_observation_space.shape[0], env.single_action_space.n).to(device)
    q_network.load_state_dict(torch.load(model_path, map_location=device, weights_only=True))
    rng = np.random.default_rng(args.seed + 1)
    obs, _ = env.reset(seed=args.seed + 1)
    returns = []
    while len(returns) < args.eval_episodes:
        actions = greedy(q_network, torch.from_numpy(obs).to(device)).cpu().numpy()
        if rng.random() < args.eval_epsilon:
            actions = rng.integers(env.single_action_space.n, size=1)
        obs, _, _, _, infos = env.step(actions)
        if "episode" in infos.get("final_info", {}):
            returns.append(float(infos["final_info"]["episode"]["r"][0]))
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
    probe = make_env(args.env_id, 0, False, "")()
    stack, *frame_shape = probe.observation_space.shape
    n_actions = probe.action_space.n
    probe.close()
    # Keep the buffer on the GPU when it fits, so sampling never copies from the host.
    buffer_bytes = FrameReplayBuffer.nbytes(args.buffer_size, tuple(frame_shape))
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
    sample_rng = np.random.default_rng([args.seed, 1])  # replay sampling: a stream of its own

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

    # SAME_STEP autoreset: a finished env is reset inside step(); its true final obs comes in infos["final_obs"].
    # Env workers (--async-envs) inherit these ignored signals: Ctrl-C and SIGTERM reach this process only,
    # which checkpoints and closes them (its own handlers are installed below).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    # A resumed run records into a folder of its own: RecordVideo numbers episodes from 0 again.
    video_name = run_name + (f"/resumed_at_{checkpoint['counters']['global_step']}" if checkpoint else "")
    vector_env = gym.vector.AsyncVectorEnv if args.async_envs else gym.vector.SyncVectorEnv
    envs = vector_env(
        [make_env(args.env_id, i, args.capture_video, video_name) for i in range(args.num_envs)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert isinstance(envs.single_action_space, gym.spaces.Discrete), "only Discrete action spaces are supported"

    q_network = QNetwork(stack, n_actions).to(device)
    use_graphs = args.cuda_graphs and device.type == "cuda" and buffer_device == device
    optimizer = torch.optim.Adam(
        q_network.parameters(), lr=args.learning_rate, fused=device.type in ("cpu", "cuda"), capturable=use_graphs
    )
    target_network = QNetwork(stack, n_actions).to(device)
    target_network.load_state_dict(q_network.state_dict())
    rb = FrameReplayBuffer(args.buffer_size, args.num_envs, stack, tuple(frame_shape), buffer_device)

    counters = {"global_step": 0, "gradient_steps": 0, "target_updates": 0, "episodes": 0, "elapsed": 0.0}
    counters["learning_start_step"] = args.learning_starts
    if checkpoint is not None:
        q_network.load_state_dict(checkpoint["q_network"])
        target_network.load_state_dict(checkpoint["target_network"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        for group in optimizer.param_groups:  # loading restores the saving session's setting; graphs need this one
            group["capturable"] = use_graphs
        counters = checkpoint["counters"]
        torch.set_rng_state(checkpoint["torch_rng"])
        explore_rng.bit_generator.state = checkpoint["explore_rng"]
        sample_rng.bit_generator.state = checkpoint["sample_rng"]
        if "buffer" in checkpoint:
            rb.load_state_dict(checkpoint["buffer"])
        else:  # refill the empty buffer before training again
            counters["learning_start_step"] = counters["global_step"] + args.learning_starts
        print(f"resumed {run_name} at env step {counters['global_step']:,}")

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
            "sample_rng": sample_rng.bit_generator.state,
        }
        if args.checkpoint_buffer:
            state["buffer"] = rb.state_dict()
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)  # a crash while writing never leaves a broken checkpoint
        return path

    def gradient_step(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One Adam step on the batch of `rows` (FrameReplayBuffer.sample); returns the loss and mean Q taken."""
        batch = {name: value.to(device) for name, value in rb.gather(rows).items()}
        with torch.no_grad():
            next_values = next_state_value(q_network, target_network, batch["next_obs"])
            targets = td_target(batch["rewards"], batch["terminated"], next_values, args.gamma)
        q_taken = q_network(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q_taken, targets)  # Huber: the paper's error clipping
        optimizer.zero_grad(set_to_none=False)  # a captured step must keep its gradient tensors
        loss.backward()
        if args.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(q_network.parameters(), args.max_grad_norm)
        optimizer.step()
        return loss.detach(), q_taken.detach().mean()

    # Eager on the CPU; on CUDA both become graph replays (see CudaGraphed). Rows go where the frames are: a
    # buffer too big for the GPU stays on the host, and then the gradient step runs eagerly.
    act = CudaGraphed(lambda obs: greedy(q_network, obs), device, args.cuda_graphs)
    train = CudaGraphed(gradient_step, buffer_device, use_graphs)

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
    exit_code, sps, epsilon = 0, 0.0, args.start_e
    try:
        # A resumed run restarts the episodes that were in progress, from seeds that depend on the step.
        obs, _ = envs.reset(seed=args.seed + global_step)
        rb.start(obs[:, -1])
        while global_step < args.total_timesteps and stop_signal is None:
            # Epsilon-greedy; the network runs only when some env exploits.
            epsilon = linear_schedule(
                args.start_e, args.end_e, args.exploration_fraction * args.total_timesteps, global_step
            )
            explore, actions = explore_actions(explore_rng.random(args.num_envs), epsilon, n_actions)
            if not explore.all():
                actions = np.where(explore, actions, act(torch.from_numpy(obs)).cpu().numpy())

            next_obs, rewards, terminations, truncations, infos = envs.step(actions)
            prev_step, global_step = global_step, global_step + args.num_envs
            dones = terminations | truncations
            rb.add(actions, rewards, terminations, dones, true_next_obs(next_obs, dones, infos)[:, -1], next_obs[:, -1])
            obs = next_obs
            # A life loss ends an episode for learning only; whole games come from RecordEpisodeStatistics.
            if "episode" in infos.get("final_info", {}):
                games = infos["final_info"]
                for i in np.flatnonzero(games["_episode"]):
                    score, frames = float(games["episode"]["r"][i]), int(games["episode"]["l"][i])
                    logger.log(global_step, {"charts/episodic_return": score, "charts/episodic_length": frames})
                    recent_returns = (recent_returns + [score])[-20:]
                    counters["episodes"] += 1

            for _ in range(events_due(prev_step, global_step, args.train_frequency, counters["learning_start_step"])):
                loss, q_mean = train(torch.from_numpy(rb.sample(args.batch_size, sample_rng)))
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"non-finite TD loss ({loss.item()}) at env step {global_step:,}")
                counters["gradient_steps"] += 1
                if counters["gradient_steps"] % 100 == 1:
                    logger.log(global_step, {"losses/td_loss": loss.item(), "losses/q_values": q_mean.item()})

            for _ in range(
                events_due(prev_step, global_step, args.target_network_frequency, counters["learning_start_step"])
            ):
                soft_update(target_network, q_network, args.tau)
                counters["target_updates"] += 1

            counters["global_step"] = global_step
            sps = (global_step - start_step) / max(time.time() - start_time, 1e-9)
            if events_due(prev_step, global_step, 100):
                logger.log(global_step, {"charts/epsilon": epsilon, "charts/SPS": sps})
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
