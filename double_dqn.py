"""Double DQN with an MLP Q-network for vector observations: a single-file research baseline.

Double DQN: van Hasselt, Guez and Silver 2016, "Deep Reinforcement Learning with Double Q-learning", AAAI: n-step
targets bootstrap from Q_target(s', argmax_a Q_online(s', a)), against DQN's overestimation. This is `dqn.py` with that
TD target and little else (`diff dqn.py double_dqn.py`).
Dueling Q-network, replay, soft target, clamped values, no learning in the last quarter (flags and defaults: dqn.py).
Departures from CleanRL: README.md; from SPEC.md: tyro boxes a mistyped flag; no memory check without /proc/meminfo."""

import collections
import contextlib
import os
import random
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import tyro
from gymnasium.vector import AutoresetMode
from torch.utils.tensorboard import SummaryWriter


@dataclass
class Args:
    env_id: str = "CartPole-v1"
    """gymnasium id; `my_module:MyEnv-v0` imports my_module first, which registers it (CleanRL's default)"""
    total_timesteps: int = 70_000
    """env steps of training, summed over all envs (tuned for CartPole-v1, docs/tuning.md; CleanRL 500k)"""
    learning_rate: float = 1e-3
    """Adam's learning rate (tuned; CleanRL 2.5e-4)"""
    lr_decay_fraction: float = 0.8
    """rate falls linearly from (1 - this) of the run to 0 at (1 - lr_zero_fraction); 0: constant (tuned; CleanRL 0)"""
    lr_zero_fraction: float = 0.25
    """last fraction of the run at rate 0, no gradient steps: it plays the network it learned (tuned; CleanRL 0)"""
    amsgrad: bool = True
    """use Adam's AMSGrad variant, Reddi et al. 2018 (tuned; CleanRL plain Adam)"""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """widths of the Q-network's hidden layers, a ReLU after each (SB3 zoo's CartPole net; CleanRL 120 84)"""
    dueling: bool = True
    """a dueling head, Q = V(s) + A(s, a) - mean_a A, Wang et al. 2016 (tuned; off: CleanRL's one output layer)"""
    layer_norm: bool = False
    """a LayerNorm between each hidden Linear and its ReLU: bounded features, Gallici et al. 2025 (off: CleanRL's)"""
    num_envs: int = 1
    """parallel envs; every step count is summed over them (CleanRL's default)"""
    buffer_size: int = 100_000
    """replay capacity in transitions (SB3 zoo's CartPole value; CleanRL 10k)"""
    gamma: float = 0.995
    """discount factor; each replay row takes the buffer's copy of it when stored (tuned; CleanRL 0.99)"""
    n_step: int = 3
    """rewards summed before the bootstrap: sum_j<n gamma^j r_t+j + gamma^n V(s_t+n); 1: DQN's (tuned; CleanRL 1)"""
    tau: float = 0.01
    """target update rate: target <- tau * online + (1 - tau) * target; 1: a hard copy (tuned; CleanRL 1)"""
    target_network_frequency: int = 4
    """env steps between target updates (tuned; CleanRL 500)"""
    batch_size: int = 128
    """transitions per gradient step (CleanRL's default)"""
    start_e: float = 1.0
    """exploration rate at the start (CleanRL's default)"""
    end_e: float = 0.04
    """exploration rate at the end of its schedule (SB3 zoo's CartPole value; CleanRL 0.05)"""
    exploration_fraction: float = 0.1333
    """fraction of total_timesteps over which epsilon falls linearly, start_e to end_e (9.3k steps; CleanRL 0.5)"""
    learning_starts: int = 1_000
    """env steps of play before the first gradient step (SB3 zoo's CartPole value; CleanRL 10k)"""
    train_frequency: int = 4
    """env steps between gradient steps (tuned; CleanRL 10)"""
    clamp_values: bool = True
    """clamp bootstrapped values to what a policy can earn, [min(r, 0), max(r, 0)] / (1 - gamma) (tuned; CleanRL off)"""
    max_grad_norm: float = 1.0
    """largest global L2 norm of the gradient, rescaled down to it before each Adam step; 0: off (tuned; CleanRL off)"""
    # --- the run, not the algorithm (a resume may change those after seed, up to resume; algorithm flags go above) ---
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """experiment name, part of the run name `{env_id}__{exp_name}__{seed}__{unix_time}` (CleanRL's: the file's)"""
    seed: int = 1
    """seed of every random stream: network init, exploration, replay sampling, env resets (CleanRL's default)"""
    torch_deterministic: bool = True
    """use deterministic CUDA algorithms (CPU runs are deterministic anyway; CleanRL's default)"""
    cuda: bool = True
    """use CUDA when there is a GPU (CleanRL's default); for an MLP this small the CPU is faster: try --no-cuda"""
    track: bool = False
    """log to Weights & Biases; `WANDB_MODE=offline` works without network (off: CleanRL's default)"""
    wandb_project_name: str = "dqn-baselines"
    """wandb project of a tracked run (CleanRL's is cleanRL)"""
    wandb_entity: str | None = None
    """wandb team or user of a tracked run; None: your default entity (CleanRL's default)"""
    capture_video: bool = False
    """record env 0's episodes under videos/{run_name}/ (off: CleanRL's default)"""
    save_model: bool = False
    """save the weights to runs/{run_name}/{exp_name}.pt at the end, then evaluate them (off: CleanRL's default)"""
    eval_episodes: int = 10
    """episodes that evaluation plays (CleanRL's number)"""
    eval_epsilon: float = 0.05
    """exploration rate during that evaluation, 0 for greedy (CleanRL's default)"""
    checkpoint_frequency: int = 0
    """env steps between checkpoints to runs/{run_name}/checkpoint.pt; 0: only on Ctrl-C or SIGTERM"""
    checkpoint_buffer: bool = False
    """put the replay buffer in checkpoints, so a resumed run trains at once instead of refilling it first"""
    resume: str | None = None
    """checkpoint to continue: algorithm flags, exp_name and seed come from it, the other run flags from this command"""


def make_env(env_id: str, idx: int, capture_video: bool, video_folder: str):
    """A thunk that builds env `idx`; env 0 records videos when asked."""
    if capture_video and idx == 0:
        return lambda: gym.wrappers.RecordVideo(gym.make(env_id, render_mode="rgb_array"), video_folder)
    return lambda: gym.make(env_id)


class QNetwork(nn.Module):
    """MLP from a flat observation to one Q-value per action, a ReLU per hidden layer; dueling: Q = V + A - mean_a A."""

    def __init__(self, obs_dim: int, n_actions: int, args: Args):  # its layout: hidden_sizes, dueling, layer_norm
        super().__init__()
        widths, layers, dueling, norm = (obs_dim, *args.hidden_sizes), [], args.dueling, args.layer_norm
        for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.Linear(width_in, width_out), *([nn.LayerNorm(width_out)] if norm else []), nn.ReLU()]
        self.network = nn.Sequential(*layers, *([] if dueling else [nn.Linear(widths[-1], n_actions)]))
        self.value = nn.Linear(widths[-1], 1) if dueling else None  # V(s), from the last hidden layer's output
        self.advantage = nn.Linear(widths[-1], n_actions) if dueling else None  # A(s, a), on the same

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.value is None:
            return self.network(x)
        advantages = self.advantage(features := self.network(x))
        return self.value(features) + advantages - advantages.mean(dim=-1, keepdim=True)  # Wang et al.'s eq. 9


def linear_schedule(start_e: float, end_e: float, duration: float, t: int) -> float:
    """Epsilon at env step t: linear from start_e at t = 0 to end_e at t = duration, constant after."""
    return max((end_e - start_e) / duration * t + start_e, end_e)


def lr_scale_at(decay_fraction: float, zero_fraction: float, total: int, t: int) -> float:
    """The rate's multiplier at env step t: 1, linear to 0 from (1 - decay_fraction) to (1 - zero_fraction) of total"""
    start, end = (1 - decay_fraction) * total, (1 - zero_fraction) * total
    return min(1.0, max(0.0, (end - t) / max(end - start, 1e-9))) if decay_fraction else 1.0  # end <= start: a step


def explore_actions(u: np.ndarray, epsilon: float, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Which envs explore (u < epsilon, u uniform) and, there, a uniform action: floor(u / epsilon * n_actions)."""
    return u < epsilon, (u / max(epsilon, 1e-12) * n_actions).astype(np.int64)


def greedy_actions(q_network: nn.Module, obs: np.ndarray, device: torch.device) -> np.ndarray:
    """argmax_a Q(obs, a) for a batch of observations, by the network as it is now (in train mode, as it learns)."""
    with torch.no_grad():
        return q_network(torch.as_tensor(obs, dtype=torch.float32, device=device)).argmax(dim=1).cpu().numpy()


def events_due(prev_step: int, step: int, every: int, start: int = 0) -> int:
    """Multiples of `every` in (max(prev_step, start), step]: steps move num_envs at a time, `% every` could miss."""
    return max(0, step // every - max(prev_step, start) // every)


def next_state_value(q_network: nn.Module, target_network: nn.Module, next_obs: torch.Tensor) -> torch.Tensor:
    """Double DQN's value of s': Q_target(s', argmax_a Q_online(s', a))."""
    next_actions = q_network(next_obs).argmax(dim=1, keepdim=True)
    return target_network(next_obs).gather(1, next_actions).squeeze(1)


def td_target(rewards: torch.Tensor, terminated: torch.Tensor, next_values: torch.Tensor, discounts: torch.Tensor):
    """r + discount * V(s'), no bootstrap after a termination (a truncation does); discount: gamma ** (steps in r)."""
    assert rewards.shape == terminated.shape == next_values.shape == discounts.shape and rewards.ndim == 1
    return rewards + discounts * next_values * (1.0 - terminated)


def soft_update(target_network: nn.Module, q_network: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, buffers too (BatchNorm statistics); an exact copy when tau == 1."""
    online = [*q_network.parameters(), *q_network.buffers()]
    with torch.no_grad():
        for target_value, value in zip([*target_network.parameters(), *target_network.buffers()], online, strict=True):
            target_value.lerp_(value, tau) if target_value.is_floating_point() else target_value.copy_(value)


class ReplayBuffer:
    """Circular buffer of n-step rows [s_t, s_t+k, a_t, sum_j<k gamma^j r_t+j, terminated, gamma^k] in host memory, k =
    n_step or fewer at an episode's end; no row spans a reset. Edit `rewards` before `add`: the clamp reads it too."""

    COLUMNS = ("actions", "rewards", "terminated", "discounts")  # a row's columns after obs and next_obs

    def __init__(self, capacity: int, obs_dim: int, num_envs: int, n_step: int, gamma: float):
        self.capacity, self.obs_dim, self.pos, self.size = capacity, obs_dim, 0, 0
        self.n_step, self.gamma, self.pending = n_step, gamma, [collections.deque() for _ in range(num_envs)]
        self.data = torch.zeros((capacity, 2 * obs_dim + len(self.COLUMNS)), dtype=torch.float32)

    def add(self, obs, next_obs, actions, rewards, terminated, truncated) -> None:
        """Add one vector step (arrays, a leading env axis; next_obs: the true final obs); store what it completes."""
        for i, steps in enumerate(self.pending):
            steps.append((obs[i].copy(), actions[i], rewards[i]))  # a copy: an env may reuse its obs array
            while len(steps) >= self.n_step or (steps and (terminated[i] or truncated[i])):
                first_obs, action, _ = steps[0]
                n_step_return = sum(self.gamma**j * reward for j, (_, _, reward) in enumerate(steps))
                row = (action, n_step_return, terminated[i], self.gamma ** len(steps))
                self.data.numpy()[self.pos] = np.concatenate((first_obs, next_obs[i], row))  # NumPy: cheaper than torch
                self.pos, self.size = (self.pos + 1) % self.capacity, min(self.size + 1, self.capacity)
                steps.popleft()

    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        rows = self.data[torch.from_numpy(rng.integers(self.size, size=batch_size))].to(device)
        obs, next_obs, rest = rows.split([self.obs_dim, self.obs_dim, len(self.COLUMNS)], dim=1)
        batch = dict(zip(self.COLUMNS, rest.unbind(dim=1), strict=True))
        return batch | dict(obs=obs, next_obs=next_obs, actions=batch["actions"].long())

    def state_dict(self) -> dict:
        return {"pos": self.pos, "size": self.size, "data": self.data[: self.size].clone()}

    def load_state_dict(self, state: dict) -> None:
        self.pos, self.size = state["pos"], state["size"]
        self.data[: self.size] = state["data"]


def train(args: Args, run: "Run") -> None:
    """DQN's loop: act, store, then the gradient steps and target updates due; `run` (plumbing, below) logs, resumes."""
    thunks = [make_env(args.env_id, i, args.capture_video, run.video_folder) for i in range(args.num_envs)]
    envs = gym.vector.SyncVectorEnv(thunks, autoreset_mode=AutoresetMode.SAME_STEP)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP  # resets inside step(), final obs in infos
    obs_dim, n_actions = envs.single_observation_space.shape[0], envs.single_action_space.n
    q_network = QNetwork(obs_dim, n_actions, args).to(run.device)
    target_network = QNetwork(obs_dim, n_actions, args).to(run.device).eval()  # eval(): targets without dropout
    target_network.load_state_dict(q_network.state_dict())
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, amsgrad=args.amsgrad, fused=True)
    rb = ReplayBuffer(args.buffer_size, obs_dim, args.num_envs, args.n_step, args.gamma)
    explore_rng, sample_rng = np.random.default_rng(args.seed), np.random.default_rng([args.seed, 1])  # two streams
    rngs = dict(explore_rng=explore_rng, sample_rng=sample_rng)  # with the objects below: what a checkpoint holds
    counters = run.restore(  # a resume loads into them; a save reads the names then, so a network rebound is saved
        lambda: dict(q_network=q_network, target_network=target_network, optimizer=optimizer, buffer=rb) | rngs
    )
    global_step, learning_start = counters["global_step"], counters["learning_start_step"]

    reward_bounds = counters.setdefault("reward_bounds", [0.0, 0.0])  # min(r, 0), max(r, 0) over the rewards seen
    obs, _ = envs.reset(seed=args.seed + global_step)  # a resumed run restarts its episodes (none pending in rb)
    while global_step < args.total_timesteps and run.stop_signal is None:
        duration = args.exploration_fraction * args.total_timesteps
        epsilon = linear_schedule(args.start_e, args.end_e, duration, global_step)
        explore, actions = explore_actions(explore_rng.random(args.num_envs), epsilon, n_actions)
        actions = np.where(explore, actions, greedy_actions(q_network, obs, run.device))

        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        prev_step, global_step = global_step, global_step + args.num_envs
        run.log_episodes(global_step, rewards, terminations | truncations)  # the env's rewards, before any edit
        real_next_obs = next_obs.copy()  # where an episode ended, next_obs is the reset one: store the true final obs
        for i in np.flatnonzero(terminations | truncations):
            real_next_obs[i] = infos["final_obs"][i]
        rb.add(obs, real_next_obs, actions, rewards, terminations, truncations)
        reward_bounds[:] = min(reward_bounds[0], float(rewards.min())), max(reward_bounds[1], float(rewards.max()))
        obs = next_obs

        lr_scale = lr_scale_at(args.lr_decay_fraction, args.lr_zero_fraction, args.total_timesteps, global_step)
        for group in optimizer.param_groups if args.lr_decay_fraction > 0 else []:  # 0: the optimizer's own rates
            assert group["lr"] == group.get("decayed_lr", group["lr"]), "rates set elsewhere: --lr-decay-fraction 0"
            group["lr"] = group["decayed_lr"] = lr_scale * group.setdefault("initial_lr", group["lr"])
        for _ in range(events_due(prev_step, global_step, args.train_frequency, learning_start) if lr_scale else 0):
            batch = rb.sample(args.batch_size, sample_rng, run.device)
            with torch.no_grad():
                next_values = next_state_value(q_network, target_network, batch["next_obs"])
                if args.clamp_values:  # no policy earns more or less; a value past these would feed itself via the max
                    next_values = next_values.clamp(*(bound / (1 - args.gamma) for bound in reward_bounds))
                targets = td_target(batch["rewards"], batch["terminated"], next_values, batch["discounts"])
            q_taken = q_network(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
            assert q_taken.shape == targets.shape, (q_taken.shape, targets.shape)  # no [B, 1] against [B]
            loss = F.smooth_l1_loss(q_taken, targets)  # Huber: the Nature paper's error clipping
            run.log_losses(global_step, loss, q_taken.detach().mean())  # a non-finite loss ends the run
            optimizer.zero_grad()
            loss.backward()
            if args.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(q_network.parameters(), args.max_grad_norm)
            optimizer.step()
            counters["gradient_steps"] += 1
        for _ in range(events_due(prev_step, global_step, args.target_network_frequency, learning_start)):
            soft_update(target_network, q_network, args.tau)
            counters["target_updates"] += 1
        run.step_done(prev_step, global_step, epsilon, optimizer.param_groups[0]["lr"])  # log, checkpoint, progress
    envs.close()


# --- run plumbing: seeds, logs, checkpoints, resume, input checks; the algorithm is all above ---

SCRIPT, FLAGS = os.path.basename(__file__), [f.name for f in fields(Args)]  # checkpoints record both
SESSION_FLAGS = FLAGS[FLAGS.index("seed") + 1 : FLAGS.index("resume") + 1]  # a resume's own (one appended: not)


class Run:
    """A run's folder, seeding, metrics (metrics.csv, TensorBoard, wandb), progress line, signals, checkpoints."""

    def __init__(self, args: Args, checkpoint: dict | None):
        self.args, self.checkpoint, self.stop_signal, self.recent_returns, self.wandb = args, checkpoint, None, [], None
        self.device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
        print(f"device: {self.device}" + (f" ({torch.cuda.get_device_name()})" if self.device.type == "cuda" else ""))
        for seed_stream in (random.seed, np.random.seed, torch.manual_seed):  # one seed feeds every stream
            seed_stream(args.seed)
        torch.backends.cudnn.deterministic = args.torch_deterministic  # torch >= 2.10: cuBLAS needs no workspace flag
        torch.use_deterministic_algorithms(args.torch_deterministic and self.device.type == "cuda")
        fresh = dict(global_step=0, gradient_steps=0, target_updates=0, episodes=0, elapsed=0.0)
        self.counters = checkpoint["counters"] if checkpoint else fresh | {"learning_start_step": args.learning_starts}
        self.dir, unix_time = checkpoint and os.path.dirname(os.path.abspath(args.resume)), int(time.time())
        while not self.dir:  # a new run's folder; a name taken in this second (a sweep) takes the next second
            with contextlib.suppress(FileExistsError):
                os.makedirs(name := f"runs/{args.env_id}__{args.exp_name}__{args.seed}__{unix_time}")
                self.dir = name
            unix_time += 1
        self.name = checkpoint["run_name"] if checkpoint else os.path.basename(self.dir)
        self.video_folder = f"videos/{self.name}" + f"/resumed_at_{self.counters['global_step']}" * bool(checkpoint)
        if args.track:
            import wandb

            self.wandb = wandb.init(project=args.wandb_project_name, entity=args.wandb_entity, config=vars(args),
                name=self.name, id=checkpoint and checkpoint["wandb_id"], resume="allow", save_code=True)  # fmt: skip
            self.wandb.define_metric("*", step_metric="global_step")
        self.csv = open(f"{self.dir}/metrics.csv", "a", buffering=1)  # line-buffered: each row on disk at once
        self.csv.write("global_step,wall_time,metric,value\n" * (self.csv.tell() == 0))
        self.tensorboard = SummaryWriter(self.dir)
        self.returns, self.lengths = np.zeros(args.num_envs), np.zeros(args.num_envs, int)
        self.tty, self.printed_at, self.start_time = sys.stdout.isatty(), 0.0, time.time()

    def restore(self, state) -> dict:
        """`state()`: what checkpoints hold, read at each save. Loads a resume's checkpoint into it; returns counters"""
        self.state, saved, self.start_step = state, self.checkpoint or {}, self.counters["global_step"]
        self.checkpoint = None  # loaded into `state` below: its copy of the replay is freed after it
        for name, obj in state().items():  # networks first: an edited one fails naming its keys
            if name in saved and isinstance(obj, np.random.Generator):
                obj.bit_generator.state = saved[name]
            elif name in saved:
                obj.load_state_dict(saved[name])
        if saved:
            torch.set_rng_state(saved["torch_rng"])
            print(f"resumed {self.name} at env step {self.counters['global_step']:,}")
            if "buffer" not in saved:  # the empty buffer refills for learning_starts env steps before training again
                start = self.counters["learning_start_step"] = self.counters["global_step"] + self.args.learning_starts
                print(f"no replay in the checkpoint (--checkpoint-buffer): refilling; learning from env step {start:,}")
        for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C: the loop stops at its next step, with a checkpoint
            signal.signal(signum, lambda signum, frame: setattr(self, "stop_signal", signum))
        return self.counters

    def log(self, step: int, metrics: dict[str, float]) -> None:  # wall_time: seconds since the run began
        wall_time = round(time.time() - self.start_time + self.counters["elapsed"], 3)
        self.csv.write("".join(f"{step},{wall_time},{name},{value}\n" for name, value in metrics.items()))
        for name, value in metrics.items():
            self.tensorboard.add_scalar(name, value, step)
        self.wandb is not None and self.wandb.log(metrics | {"global_step": step})

    def log_episodes(self, step: int, rewards: np.ndarray, dones: np.ndarray) -> None:
        self.returns, self.lengths = self.returns + rewards, self.lengths + 1
        for i in np.flatnonzero(dones):
            self.log(step, {"charts/episodic_return": self.returns[i], "charts/episodic_length": self.lengths[i]})
            self.recent_returns = (self.recent_returns + [float(self.returns[i])])[-20:]
            self.counters["episodes"] += 1
            self.returns[i], self.lengths[i] = 0.0, 0

    def log_losses(self, step: int, loss: torch.Tensor, q_taken_mean: torch.Tensor) -> None:
        if not np.isfinite(value := loss.item()):
            raise FloatingPointError(f"non-finite TD loss ({value}) at env step {step:,}")
        if self.counters["gradient_steps"] % 100 == 0:
            self.log(step, {"losses/td_loss": value, "losses/q_values": q_taken_mean.item()})

    def step_done(self, prev_step: int, step: int, epsilon: float, learning_rate: float) -> None:
        self.counters["global_step"], total = step, self.args.total_timesteps
        sps = (step - self.start_step) / max(time.time() - self.start_time, 1e-9)
        if events_due(prev_step, step, 100):
            self.log(step, {"charts/epsilon": epsilon, "charts/learning_rate": learning_rate, "charts/SPS": sps})
        if self.args.checkpoint_frequency and events_due(prev_step, step, self.args.checkpoint_frequency):
            self.save_checkpoint()
        if step >= total or time.time() - self.printed_at >= (0.25 if self.tty else 10.0):  # to a file: every 10 s
            self.printed_at, eta = time.time(), time.gmtime(max(total - step, 0) / max(sps, 1e-9))
            mean = f"{np.mean(self.recent_returns):8.2f}" if self.recent_returns else "       -"
            line = f"step {step:>10,}/{total:,} ({100 * step / total:3.0f}%) | {sps:7,.0f} SPS | ETA "
            line += f"{eta.tm_yday - 1}d {time.strftime('%H:%M:%S', eta)} | eps {epsilon:.3f} | return (last 20) {mean}"
            print(("\r" + line) if self.tty else line, end="" if self.tty and step < total else "\n", flush=True)

    def save_checkpoint(self) -> str:
        path, elapsed = f"{self.dir}/checkpoint.pt", self.counters["elapsed"] + time.time() - self.start_time
        state = {"script": SCRIPT, "args": asdict(self.args) | {"resume": None}, "run_name": self.name}
        state |= {"wandb_id": self.wandb and self.wandb.id, "torch_rng": torch.get_rng_state()}
        state["counters"] = self.counters | {"elapsed": elapsed}
        for name, obj in self.state().items():
            if name != "buffer" or self.args.checkpoint_buffer:
                state[name] = obj.bit_generator.state if isinstance(obj, np.random.Generator) else obj.state_dict()
        torch.save(state, path + ".tmp")
        os.replace(path + ".tmp", path)  # a crash while writing never leaves a broken checkpoint
        return path

    def finish(self, error: Exception | None = None) -> int:
        """After training: the checkpoint a signal asked for, the summary, --save-model, closing. The exit code."""
        for signum in (signal.SIGINT, signal.SIGTERM):  # training is over: a signal stops the script at once
            signal.signal(signum, lambda n, f: setattr(self, "stop_signal", n) or signal.default_int_handler(n, f))
        code, counters = 1 if error else 128 + self.stop_signal if self.stop_signal else 0, self.counters
        try:
            if error:
                print(f"\nerror: {error}", file=sys.stderr)
            elif self.stop_signal:  # it came during training, maybe in its last step
                path, step = self.save_checkpoint(), counters["global_step"]
                print(f"\nstopped by signal {self.stop_signal} at env step {step:,}; checkpoint: {path}")
            summary = "{global_step:,} env steps, {gradient_steps:,} gradient steps, {target_updates:,} target updates"
            elapsed = time.time() - self.start_time
            print(f"done: {summary.format(**counters)}, {counters['episodes']:,} episodes in {elapsed:.1f} s")
            if code == 0 and self.args.save_model:
                torch.save(self.state()["q_network"].state_dict(), path := f"{self.dir}/{self.args.exp_name}.pt")
                returns = evaluate(path, self.args, self.device)
                for r in returns:
                    self.log(counters["global_step"], {"eval/episodic_return": r})
                print(f"model saved to {path}; eval: mean return {np.mean(returns):.2f} +- {np.std(returns):.2f}")
        except KeyboardInterrupt:
            print(f"\nstopped by signal {self.stop_signal} after training")
            code = 128 + self.stop_signal
        self.csv.close()
        self.tensorboard.close()
        self.wandb is not None and self.wandb.finish(exit_code=code)
        return code


def evaluate(model_path: str, args: Args, device: torch.device) -> list[float]:
    """A new QNetwork with the saved weights plays eval_episodes episodes, epsilon-greedy at `eval_epsilon`: returns"""
    env, rng, returns = make_env(args.env_id, 0, False, "")(), np.random.default_rng(args.seed + 1), []
    q_network = QNetwork(env.observation_space.shape[0], env.action_space.n, args)
    q_network.to(device).eval().load_state_dict(torch.load(model_path, map_location=device, weights_only=True))
    for episode in range(args.eval_episodes):
        (obs, _), done, returns = env.reset(seed=args.seed + 1 if episode == 0 else None), False, returns + [0.0]
        while not done:
            action = greedy_actions(q_network, obs[None], device)[0]
            action = rng.integers(env.action_space.n) if rng.random() < args.eval_epsilon else action
            obs, reward, terminated, truncated, _ = env.step(action)
            returns[-1], done = returns[-1] + float(reward), terminated or truncated
    env.close()
    return returns


def parse_args() -> tuple[Args, dict | None]:
    """The flags and, with --resume, the checkpoint. Bad input ends the script here: one line, exit code 2."""
    args, checkpoint = tyro.cli(Args), None
    if args.resume is not None:
        try:
            with warnings.catch_warnings():  # a foreign pickle's protocol warning would break the one-line error
                warnings.simplefilter("ignore")
                checkpoint = torch.load(args.resume, map_location="cpu", weights_only=True)
            saved, script = checkpoint["args"], checkpoint.get("script", "a script that did not record its name")
        except Exception as e:  # torch.load fails in many ways on files of other kinds (text, foreign pickles)
            fail(f"--resume {args.resume}: not a checkpoint of {SCRIPT} ({type(e).__name__})")
        if script != SCRIPT or set(saved) != set(FLAGS):  # a sibling's checkpoint can have the same flags
            other = " ".join(f"--{n.replace('_', '-')}" for n in sorted(set(saved) ^ set(FLAGS)))
            other = f" with other flags ({other})" if other else ""
            fail(f"--resume {args.resume}: a checkpoint of {script}{other}, not of this {SCRIPT}; start a new run")
        args = tyro.cli(Args, default=Args(**saved | {name: getattr(args, name) for name in SESSION_FLAGS}))
        if changed := [f"--{n.replace('_', '-')} {getattr(args, n)} (the checkpoint's: {saved[n]})" for n in FLAGS
                       if n not in SESSION_FLAGS and getattr(args, n) != saved[n]]:  # fmt: skip
            fail(f"--resume {args.resume}: {', '.join(changed)}; a resumed run keeps its flags, start a new run")
    positive = ("total_timesteps", "num_envs", "buffer_size", "batch_size", "target_network_frequency", "n_step")
    rules = [(n, getattr(args, n) > 0, "> 0") for n in (*positive, "train_frequency", "eval_episodes", "learning_rate")]
    rules += [(n, getattr(args, n) >= 0, ">= 0") for n in ("learning_starts", "checkpoint_frequency", "max_grad_norm")]
    rules += [(n, 0 <= getattr(args, n) <= 1, "in [0, 1]") for n in ("gamma", "start_e", "end_e", "eval_epsilon")]
    rules += [(n, 0 < getattr(args, n) <= 1, "in (0, 1]") for n in ("tau", "exploration_fraction")]
    rules += [(n, 0 <= getattr(args, n) <= 1, "in [0, 1]") for n in ("lr_decay_fraction", "lr_zero_fraction")]
    rules += [
        ("exp_name", args.exp_name and os.path.basename(args.exp_name) == args.exp_name, "a name without '/'"),
        ("seed", 0 <= args.seed < 2**32, "in [0, 2**32 - 1] (numpy's seeding)"),
        ("gamma", args.gamma < 1 or not args.clamp_values, "< 1 with --clamp-values (its bounds divide by 1 - gamma)"),
        ("hidden_sizes", args.hidden_sizes and min(args.hidden_sizes) > 0, "one or more positive widths"),
        ("batch_size", args.batch_size <= args.buffer_size, f"<= --buffer-size ({args.buffer_size})"),
        ("num_envs", args.num_envs <= args.buffer_size, f"<= --buffer-size ({args.buffer_size})"),
        ("learning_starts", args.learning_starts < args.total_timesteps, f"< --total-timesteps {args.total_timesteps}"),
        ("learning_starts", args.learning_starts >= (args.n_step - 1) * args.num_envs, ">= (n-step - 1) * num-envs"),
        ("end_e", args.end_e <= args.start_e, f"<= --start-e ({args.start_e})"),
    ]
    for name, ok, allowed in rules:
        if not ok:
            fail(f"--{name.replace('_', '-')} {getattr(args, name)!r}: must be {allowed}")
    try:
        with gym.make(args.env_id) as env:
            obs_space, act_space = env.observation_space, env.action_space
    except (gym.error.Error, ImportError, AttributeError, ValueError) as e:
        atari = "; for Atari use dqn_atari.py" * ("ALE/" in args.env_id or "NoFrameskip" in args.env_id)
        fail(f"--env-id {args.env_id}: cannot make this env ({type(e).__name__}: {e}){atari}")
    if not isinstance(act_space, gym.spaces.Discrete) or act_space.start != 0:  # actions index the network's outputs
        fail(f"--env-id {args.env_id}: action space {act_space} is not Discrete(n) from 0, as DQN needs")
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        fail(f"--env-id {args.env_id}: observation space {obs_space} is not a flat Box (for Atari use dqn_atari.py)")
    with open("/proc/meminfo" if os.path.exists("/proc/meminfo") else os.devnull) as f:  # Linux's; elsewhere: no check
        free = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), float("inf"))
    if (need := 4 * args.buffer_size * (2 * obs_space.shape[0] + len(ReplayBuffer.COLUMNS))) >= 0.8 * free:
        fail(f"--buffer-size {args.buffer_size}: the replay buffer needs {need:,} bytes, over 80% of {free:,} free")
    return args, checkpoint


def fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    run = Run(*parse_args())  # bad input ends it here: one line on stderr, exit code 2, nothing created
    try:
        train(run.args, run)
    except FloatingPointError as error:  # a non-finite loss
        sys.exit(run.finish(error))
    sys.exit(run.finish())
