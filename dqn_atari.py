"""DQN with the Nature CNN on Atari: a single-file research baseline, made for the GPU, runnable on a CPU.

DQN: Mnih et al. 2015, "Human-level control through deep reinforcement learning", Nature 518, as CleanRL runs it (none
of `dqn.py`'s dueling head, n-step targets, clamp, rate decay, AMSGrad or clipping); `dqn.py`'s layout with the Nature
CNN, ALE's C++ vector env (the DQN preprocessing in its threads) and a replay storing each frame once. A lost life ends
the episode for learning; rewards are clipped to their sign; `charts/episodic_return` is a whole game's raw score. The
envs play each step while the learner trains (a transition joins the replay one env step later than in `dqn.py`).
Departures from CleanRL: README.md, docs/atari.md; from SPEC.md: tyro boxes a mistyped flag (exit 2)."""

import contextlib
import os
import random
import signal
import sys
import time
import warnings
from dataclasses import asdict, dataclass, fields

import ale_py  # the import registers its games with gymnasium
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
    env_id: str = "BreakoutNoFrameskip-v4"
    """ALE game id without frame-skip of its own, `*NoFrameskip-v4`; `module:Id` imports module first (CleanRL's)"""
    total_timesteps: int = 10_000_000
    """agent steps of training (4 frames each), summed over all envs (CleanRL's default)"""
    learning_rate: float = 1e-4
    """Adam's learning rate (CleanRL's default)"""
    num_envs: int = 1
    """parallel games, stepped by ALE's threads; every step count is summed over them (CleanRL's default)"""
    buffer_size: int = 1_000_000
    """replay capacity in frames, about one per transition, shared evenly by the envs (CleanRL's default)"""
    gamma: float = 0.99
    """discount factor (CleanRL's default)"""
    tau: float = 1.0
    """target update rate: target <- tau * online + (1 - tau) * target; 1: a hard copy (CleanRL's default)"""
    target_network_frequency: int = 1000
    """env steps between target updates (CleanRL's default)"""
    batch_size: int = 32
    """transitions per gradient step (CleanRL's default)"""
    start_e: float = 1.0
    """exploration rate at the start (CleanRL's default)"""
    end_e: float = 0.01
    """exploration rate at the end of its schedule (CleanRL's default)"""
    exploration_fraction: float = 0.10
    """fraction of total_timesteps over which epsilon falls linearly from start_e to end_e (CleanRL's default)"""
    learning_starts: int = 80_000
    """env steps of play before the first gradient step (CleanRL's default)"""
    train_frequency: int = 4
    """env steps between gradient steps (CleanRL's default)"""
    max_grad_norm: float = 0.0
    """largest global L2 norm of the gradient, rescaled down to it before each Adam step; 0: off (CleanRL clips none)"""
    # --- the run, not the algorithm (a resume may change those after seed, up to resume; algorithm flags go above) ---
    exp_name: str = os.path.basename(__file__)[: -len(".py")]
    """experiment name, part of the run name `{env_id}__{exp_name}__{seed}__{unix_time}` (CleanRL's: the file's)"""
    seed: int = 1
    """seed of every random stream: network init, exploration, replay sampling, env resets (CleanRL's default)"""
    torch_deterministic: bool = True
    """use deterministic CUDA algorithms (CPU runs are deterministic anyway; CleanRL's default)"""
    cuda: bool = True
    """use CUDA when there is a GPU (CleanRL's default)"""
    track: bool = False
    """log to Weights & Biases; `WANDB_MODE=offline` works without network (off: CleanRL's default)"""
    wandb_project_name: str = "dqn-baselines"
    """wandb project of a tracked run (CleanRL's is cleanRL)"""
    wandb_entity: str | None = None
    """wandb team or user of a tracked run; None: your default entity (CleanRL's default)"""
    capture_video: bool = False
    """record env 0's games, as the agent sees them, under videos/{run_name}/ (off: CleanRL's default)"""
    save_model: bool = False
    """save the weights to runs/{run_name}/{exp_name}.pt at the end, then evaluate them (off: CleanRL's default)"""
    eval_episodes: int = 10
    """games that evaluation plays (CleanRL's number)"""
    eval_epsilon: float = 0.05
    """exploration rate during that evaluation, 0 for greedy (the Nature paper's; CleanRL evaluates at end_e, 0.01)"""
    checkpoint_frequency: int = 0
    """env steps between checkpoints to runs/{run_name}/checkpoint.pt; 0: only on Ctrl-C or SIGTERM"""
    checkpoint_buffer: bool = False
    """put the replay buffer in checkpoints (7 GB at 1M frames), so a resumed run trains at once, not after a refill"""
    resume: str | None = None
    """checkpoint to continue: algorithm flags, exp_name and seed come from it, the other run flags from this command"""


def make_envs(env_id: str, num_envs: int) -> ale_py.AtariVectorEnv:
    """ALE's C++ vector env with the DQN preprocessing: 0-29 no-op frames at a reset (FIRE one of them where needed),
    frame-skip 4 with a max over the last two frames, grayscale 84x84, a stack of 4 (zeros before a game's first frame).
    A lost life terminates, the game goes on; a game over or time limit resets in step(), infos["final_obs"] its end."""
    spec = gym.make(env_id).spec  # a `module:Id` id imports the module, which registers the env; the env is freed
    limits = (spec.max_episode_steps, spec.kwargs.get("max_num_frames_per_episode"))  # in frames: no frame-skip here
    kwargs = {k: v for k, v in spec.kwargs.items() if k in ("repeat_action_probability", "full_action_space")}
    return ale_py.AtariVectorEnv(
        spec.kwargs["game"], num_envs, autoreset_mode=AutoresetMode.SAME_STEP, life_loss_info=True,
        reward_clipping=False, max_num_frames_per_episode=min(filter(None, limits), default=108_000), **kwargs,
    )  # fmt: skip


def games_reset(terminations: np.ndarray, truncations: np.ndarray, lives: np.ndarray, lives_before: np.ndarray):
    """Games ended and reset in this step: a time limit, or a termination after which the lives did not fall."""
    return truncations | (terminations & (lives >= lives_before))


class QNetwork(nn.Module):
    """The Nature CNN: uint8 frame stacks (scaled by 1/255) to one Q-value per action."""

    def __init__(self, n_actions: int, stack: int = 4):
        super().__init__()
        convs = [nn.Conv2d(stack, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU()]
        convs += [nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten()]
        self.network = nn.Sequential(*convs, nn.Linear(64 * 7 * 7, 512), nn.ReLU(), nn.Linear(512, n_actions))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x / 255.0)


def linear_schedule(start_e: float, end_e: float, duration: float, t: int) -> float:
    """Epsilon at env step t: linear from start_e at t = 0 to end_e at t = duration, constant after."""
    return max((end_e - start_e) / duration * t + start_e, end_e)


def explore_actions(u: np.ndarray, epsilon: float, n_actions: int) -> tuple[np.ndarray, np.ndarray]:
    """Which envs explore (u < epsilon, u uniform) and, there, a uniform action: floor(u / epsilon * n_actions)."""
    return u < epsilon, (u / max(epsilon, 1e-12) * n_actions).astype(np.int64)


def greedy_actions(q_network: nn.Module, obs: np.ndarray, device: torch.device) -> np.ndarray:
    """argmax_a Q(obs, a) for a batch of uint8 frame stacks, by the network as it is now (train mode, as it learns)."""
    with torch.no_grad():
        return q_network(torch.as_tensor(obs, device=device)).argmax(dim=1).cpu().numpy()


def events_due(prev_step: int, step: int, every: int, start: int = 0) -> int:
    """Multiples of `every` in (max(prev_step, start), step]: steps move num_envs at a time, `% every` could miss."""
    return max(0, step // every - max(prev_step, start) // every)


def next_state_value(q_network: nn.Module, target_network: nn.Module, next_obs: torch.Tensor) -> torch.Tensor:
    """DQN's value of s': max_a Q_target(s', a)."""
    return target_network(next_obs).max(dim=1).values


def td_target(rewards: torch.Tensor, terminated: torch.Tensor, next_values: torch.Tensor, gamma: float):
    """r + gamma * V(s'), with no bootstrap after a termination (a truncation does bootstrap)."""
    assert rewards.shape == terminated.shape == next_values.shape and rewards.ndim == 1
    return rewards + gamma * next_values * (1.0 - terminated)


def soft_update(target_network: nn.Module, q_network: nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target, buffers too (BatchNorm statistics); an exact copy when tau == 1."""
    online = [*q_network.parameters(), *q_network.buffers()]
    with torch.no_grad():
        for target_value, value in zip([*target_network.parameters(), *target_network.buffers()], online, strict=True):
            target_value.lerp_(value, tau) if target_value.is_floating_point() else target_value.copy_(value)


class FrameReplayBuffer:
    """Replay that stores each frame once. Each env has a ring of slots; slot j holds an observation's newest frame and
    the transition that left it; its stack is slots j-3..j, the zeros of slot `slots` before its game's first frame.
    A game that ends takes a slot more for its true final frame, which starts no transition: none spans a reset, and
    a truncation bootstraps from where it stopped (CleanRL's issue 460). Frames on `device`, the rest in NumPy."""

    def __init__(self, capacity: int, num_envs: int, device: torch.device, stack: int = 4, frame_shape=(84, 84)):
        self.slots, self.stack, shape = capacity // num_envs, stack, (num_envs, capacity // num_envs)
        self.frames = torch.zeros((num_envs, self.slots + 1, *frame_shape), dtype=torch.uint8, device=device)
        self.actions, self.rewards = np.zeros(shape, np.int32), np.zeros(shape, np.float32)
        self.terminated, self.starts_transition = np.zeros(shape, bool), np.zeros(shape, bool)
        self.game_start = np.zeros(shape, np.int64)  # each slot's game's first slot, counted from the run's start
        self.written, self.current_start = np.zeros(num_envs, np.int64), np.zeros(num_envs, np.int64)

    def _write(self, envs: np.ndarray, frames: np.ndarray) -> None:
        slots = self.written[envs] % self.slots
        if self.frames.is_cuda:  # one copy a frame (an index kernel costs far more), from pinned memory: no host sync
            for env, slot, frame in zip(envs, slots, torch.from_numpy(frames).pin_memory(), strict=True):
                self.frames[env, slot].copy_(frame, non_blocking=True)
        else:  # through NumPy: a fraction of torch's cost per call, and no torch threads
            self.frames.numpy()[envs, slots] = frames
        self.game_start[envs, slots], self.starts_transition[envs, slots] = self.current_start[envs], False
        self.written[envs] += 1

    def start(self, frames: np.ndarray) -> None:
        self.current_start[:] = self.written
        self._write(np.arange(len(frames)), frames)

    def add(self, actions, rewards, terminated, reset, final_frames: np.ndarray, next_frames: np.ndarray) -> None:
        """Each env's transition, then its next frame (a new game's where `reset`: the ended one's goes first)."""
        envs, slots = np.arange(len(actions)), (self.written - 1) % self.slots
        self.actions[envs, slots], self.rewards[envs, slots] = actions, rewards
        self.terminated[envs, slots], self.starts_transition[envs, slots] = terminated, True
        if (ended := np.flatnonzero(reset)).size:
            self._write(ended, final_frames[ended])
            self.current_start[ended] = self.written[ended]
        self._write(envs, next_frames)

    def sample(self, batch_size: int, rng: np.random.Generator, device: torch.device) -> dict[str, torch.Tensor]:
        """Uniform stored transitions on `device`: s and s' as frame stacks, action, reward, terminated."""
        low, high = np.maximum(self.written - self.slots + self.stack - 1, 0), self.written - 2  # j-3..j+1 all stored
        assert (high >= low).all(), "sample() before every env has stored a transition"
        envs = rng.integers(len(self.written), size=batch_size)
        j = rng.integers(low[envs], high[envs] + 1)
        while (redraw := ~self.starts_transition[envs, j % self.slots]).any():  # a final frame, not a transition
            j[redraw] = rng.integers(low[envs[redraw]], high[envs[redraw]] + 1)
        first, slot = self.game_start[envs, j % self.slots], j % self.slots
        frame_slots = j[:, None] + np.arange(-(self.stack - 1), 2)
        frame_slots = np.where(frame_slots >= first[:, None], frame_slots % self.slots, self.slots)  # else zeros
        data = (self.actions[envs, slot], self.rewards[envs, slot], self.terminated[envs, slot])
        rows = torch.from_numpy(np.column_stack([envs, frame_slots, *data])).to(self.frames.device)  # float64: exact
        frames = self.frames[rows[:, :1].long(), rows[:, 1:-3].long()].to(device)  # s's frames, then s''s newest
        rows = rows.to(device)
        batch = dict(actions=rows[:, -3].long(), rewards=rows[:, -2].float(), terminated=rows[:, -1].float())
        return batch | dict(obs=frames[:, :-1], next_obs=frames[:, 1:])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(v).cpu() for k, v in vars(self).items() if isinstance(v, np.ndarray | torch.Tensor)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for name, value in state.items():
            getattr(self, name)[...] = value if name == "frames" else value.numpy()


def train(args: Args, run: "Run") -> None:
    """DQN's loop: act epsilon-greedily; while the envs play, the gradient steps and target updates due; store."""
    envs = make_envs(args.env_id, args.num_envs)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP  # a reset inside step(), the final obs in infos
    n_actions = envs.single_action_space.n
    q_network = QNetwork(n_actions).to(run.device)
    target_network = QNetwork(n_actions).to(run.device).eval()  # eval(): targets without dropout
    target_network.load_state_dict(q_network.state_dict())
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, fused=True)
    rb = FrameReplayBuffer(args.buffer_size, args.num_envs, run.buffer_device)
    explore_rng, sample_rng = np.random.default_rng(args.seed), np.random.default_rng([args.seed, 1])  # two streams
    rngs = dict(explore_rng=explore_rng, sample_rng=sample_rng)  # with the objects below: what a checkpoint holds
    counters = run.restore(  # a resume loads into them; a save reads the names then, so a network rebound is saved
        lambda: dict(q_network=q_network, target_network=target_network, optimizer=optimizer, buffer=rb) | rngs
    )
    global_step, learning_start = counters["global_step"], counters["learning_start_step"]

    obs, infos = envs.reset(seed=args.seed + global_step)  # a resumed run restarts its games, seeded by the step
    rb.start(obs[:, -1])
    while global_step < args.total_timesteps and run.stop_signal is None:
        duration = args.exploration_fraction * args.total_timesteps
        epsilon = linear_schedule(args.start_e, args.end_e, duration, global_step)
        explore, actions = explore_actions(explore_rng.random(args.num_envs), epsilon, n_actions)
        if not explore.all():  # the network runs only when some env exploits
            actions = np.where(explore, actions, greedy_actions(q_network, obs, run.device))

        envs.send(actions)  # the envs play this step while the learner trains on the replay as it was before it
        prev_step, global_step = global_step, global_step + args.num_envs
        for _ in range(events_due(prev_step, global_step, args.train_frequency, learning_start)):
            batch = rb.sample(args.batch_size, sample_rng, run.device)
            with torch.no_grad():
                next_values = next_state_value(q_network, target_network, batch["next_obs"])
                targets = td_target(batch["rewards"], batch["terminated"], next_values, args.gamma)
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

        next_obs, scores, terminations, truncations, next_infos = envs.recv()
        reset = games_reset(terminations, truncations, next_infos["lives"], infos["lives"])
        final_frames = np.where(reset[:, None, None], next_infos.get("final_obs", next_obs)[:, -1], next_obs[:, -1])
        rb.add(actions, np.sign(scores), terminations, reset, final_frames, next_obs[:, -1])  # rewards clipped to sign
        run.log_games(global_step, scores, reset, final_frames[0])  # whole games, raw scores; env 0's video
        obs, infos = next_obs, next_infos
        run.step_done(prev_step, global_step, epsilon, optimizer.param_groups[0]["lr"])  # log, checkpoint, progress
    envs.close()


# --- run plumbing: seeds, logs, checkpoints, resume, input checks; the algorithm is all above ---

SCRIPT, FLAGS = os.path.basename(__file__), [f.name for f in fields(Args)]  # checkpoints record both
SESSION_FLAGS = FLAGS[FLAGS.index("seed") + 1 : FLAGS.index("resume") + 1]  # a resume's own (one appended: not)


def replay_nbytes(capacity: int, num_envs: int, frame: int = 84 * 84) -> int:
    """FrameReplayBuffer's memory: a frame and 18 bytes a slot (its state's arrays), a frame of zeros an env."""
    return capacity * (frame + 18) + num_envs * frame


class Run:
    """A run's folder, seeding, metrics (metrics.csv, TensorBoard, wandb), progress line, signals, checkpoints."""

    def __init__(self, args: Args, checkpoint: dict | None):
        self.args, self.checkpoint, self.stop_signal, self.recent_returns, self.wandb = args, checkpoint, None, [], None
        self.device = torch.device("cuda" if torch.cuda.is_available() and args.cuda else "cpu")
        print(f"device: {self.device}" + (f" ({torch.cuda.get_device_name()})" if self.device.type == "cuda" else ""))
        need = replay_nbytes(args.buffer_size, args.num_envs)
        fits = self.device.type == "cuda" and need < 0.8 * torch.cuda.mem_get_info()[0]
        self.buffer_device = self.device if fits else torch.device("cpu")  # the GPU's memory when it fits there
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
        resumed = f"/resumed_at_{self.counters['global_step']}" if checkpoint else ""  # video numbering starts anew
        self.video_folder, self.video, self.video_games = f"videos/{self.name}{resumed}", [], 0  # env 0's games
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
        self.checkpoint = None  # loaded into `state` below: its copy of the replay (GBs on Atari) is freed after it
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

    def log_games(self, step: int, scores: np.ndarray, reset: np.ndarray, frame: np.ndarray) -> None:
        """Whole games over all lives (raw score, agent steps); --capture-video: env 0's, on RecordVideo's schedule"""
        self.returns, self.lengths, k = self.returns + scores, self.lengths + 1, self.video_games
        if self.args.capture_video and (round(k ** (1 / 3)) ** 3 == k < 1000 or k % 1000 == 0):
            self.video.append(np.repeat(frame[..., None], 3, axis=2))
        for i in np.flatnonzero(reset):
            self.log(step, {"charts/episodic_return": self.returns[i], "charts/episodic_length": self.lengths[i]})
            self.recent_returns = (self.recent_returns + [float(self.returns[i])])[-20:]
            self.counters["episodes"] += 1
            self.returns[i], self.lengths[i] = 0.0, 0
            if i == 0 and self.video:
                from gymnasium.utils.save_video import save_video  # moviepy: only for --capture-video

                save_video(self.video, self.video_folder, lambda _: True, episode_index=k, fps=15)
            self.video, self.video_games = ([], k + 1) if i == 0 else (self.video, self.video_games)

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
    """A new QNetwork with the saved weights plays `eval_episodes` games, epsilon-greedy at `eval_epsilon`: scores"""
    envs, rng, scores = make_envs(args.env_id, 1), np.random.default_rng(args.seed + 1), [0.0]
    q_network = QNetwork(envs.single_action_space.n)
    q_network.to(device).eval().load_state_dict(torch.load(model_path, map_location=device, weights_only=True))
    obs, infos = envs.reset(seed=args.seed + 1)
    while len(scores) <= args.eval_episodes:
        actions = greedy_actions(q_network, obs, device)
        actions = rng.integers(envs.single_action_space.n, size=1) if rng.random() < args.eval_epsilon else actions
        lives, (obs, reward, terminated, truncated, infos) = infos["lives"], envs.step(actions)
        scores[-1] += float(reward[0])
        scores += [0.0] * int(games_reset(terminated, truncated, infos["lives"], lives)[0])
    envs.close()
    return scores[:-1]


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
    positive = ("total_timesteps", "num_envs", "buffer_size", "batch_size", "target_network_frequency")
    rules = [(n, getattr(args, n) > 0, "> 0") for n in (*positive, "train_frequency", "eval_episodes", "learning_rate")]
    rules += [(n, getattr(args, n) >= 0, ">= 0") for n in ("checkpoint_frequency", "max_grad_norm")]
    rules += [(n, 0 <= getattr(args, n) <= 1, "in [0, 1]") for n in ("gamma", "start_e", "end_e", "eval_epsilon")]
    rules += [(n, 0 < getattr(args, n) <= 1, "in (0, 1]") for n in ("tau", "exploration_fraction")]
    rules += [
        ("exp_name", args.exp_name and os.path.basename(args.exp_name) == args.exp_name, "a name without '/'"),
        ("seed", 0 <= args.seed < 2**31 - args.total_timesteps - args.num_envs, "< 2**31 - total-timesteps - num-envs"),
        ("batch_size", args.batch_size <= args.buffer_size, f"<= --buffer-size ({args.buffer_size})"),
        ("buffer_size", args.buffer_size >= 8 * args.num_envs, f"at least 8 frames for each of {args.num_envs} envs"),
        ("learning_starts", args.learning_starts >= args.num_envs, ">= --num-envs: each env's first transition"),
        ("learning_starts", args.learning_starts < args.total_timesteps, f"< --total-timesteps {args.total_timesteps}"),
        ("end_e", args.end_e <= args.start_e, f"<= --start-e ({args.start_e})"),
    ]
    for name, ok, allowed in rules:
        if not ok:
            fail(f"--{name.replace('_', '-')} {getattr(args, name)!r}: must be {allowed}")
    try:
        with gym.make(args.env_id) as env:
            game, obs_space, kwargs = env.unwrapped, env.observation_space, env.spec.kwargs
    except (gym.error.Error, ImportError, AttributeError, ValueError) as e:
        fail(f"--env-id {args.env_id}: cannot make this env ({type(e).__name__}: {e})")
    if not isinstance(game, ale_py.AtariEnv):
        fail(f"--env-id {args.env_id}: not an ALE (Atari) game; for vector observations use dqn.py")
    if len(obs_space.shape) != 3 or obs_space.shape[2] != 3 or game._frameskip != 1:
        fail(f"--env-id {args.env_id}: not the RGB screen of a game without a frame-skip of its own (NoFrameskip-v4)")
    if flavour := {k: kwargs[k] for k in ("mode", "difficulty") if kwargs.get(k) is not None}:  # make_envs drops them
        fail(f"--env-id {args.env_id}: a game mode or difficulty {flavour} that ALE's vector env cannot play")
    free = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else float("inf")  # RAM
    with open("/proc/meminfo" if os.path.exists("/proc/meminfo") else os.devnull) as f:  # Linux's: what is available
        free = next((int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:")), free)
    free = max(free, torch.cuda.mem_get_info()[0] if torch.cuda.is_available() and args.cuda else 0)  # or the GPU's
    if (need := replay_nbytes(args.buffer_size, args.num_envs)) >= 0.8 * free:
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
