"""dqn_atari.py: ALE's vector env as the loop reads it, the frame-sharing replay memory against the env's own stacks,
the gradient step by hand, short runs."""

import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
import weakref

import numpy as np
import pytest
import torch
import torch.nn as nn
import toy_envs  # noqa: F401  (registers ToyBreakout-v0: Breakout truncated at 600 frames)
from conftest import (
    DEVICE,
    ROOT,
    assert_refused,
    load_saved,
    load_script,
    only_run_dir,
    read_metrics,
    run_script,
    script_env,
    spy,
    summary,
    train_in_process,
)
from gymnasium.utils import save_video

atari = load_script("dqn_atari.py")
TOY = ["--env-id", "toy_envs:ToyBreakout-v0"]
SHORT = ["--total-timesteps", "300", "--learning-starts", "200", "--target-network-frequency", "50"]
SHORT += ["--buffer-size", "1000", "--batch-size", "8"]


class RecordingEnvs:
    """ALE's vector env as train() drives it (reset, then send and recv, or step), each step recorded: what the loop
    reads, and the true next obs (the final one where a game was reset inside the step). Scores are multiplied by
    `score_scale`: points above 1, which clipping must change."""

    def __init__(self, envs, score_scale: float = 1.0):
        self.envs, self.steps, self.score_scale = envs, [], score_scale

    def __getattr__(self, name):
        return getattr(self.envs, name)

    def reset(self, **kwargs):
        self.obs, self.infos = self.envs.reset(**kwargs)
        return self.obs, self.infos

    def send(self, actions):
        self.actions = np.array(actions)
        self.envs.send(actions)

    def recv(self):
        next_obs, scores, terminations, truncations, infos = self.envs.recv()
        scores = scores * self.score_scale
        reset = atari.games_reset(terminations, truncations, infos["lives"], self.infos["lives"])
        true_next = np.where(reset[:, None, None, None], infos.get("final_obs", next_obs), next_obs)
        self.steps.append(dict(obs=self.obs.copy(), actions=self.actions, scores=scores.copy(), reset=reset,
                               terminations=terminations.copy(), truncations=truncations.copy(), true_next=true_next,
                               next_obs=next_obs.copy()))  # fmt: skip
        self.obs, self.infos = next_obs, infos
        return next_obs, scores, terminations, truncations, infos

    def step(self, actions):
        self.send(actions)
        return self.recv()


def play(envs, steps: int, seed: int) -> list[dict]:
    """Step `envs` from reset(seed) with random actions; each step as RecordingEnvs records it."""
    recording = RecordingEnvs(envs)
    recording.reset(seed=seed)
    envs.action_space.seed(seed)
    for _ in range(steps):
        recording.send(envs.action_space.sample())
        recording.recv()
    return recording.steps


def test_env_stacks_life_losses_and_resets():
    """What the loop relies on: 84x84 uint8 stacks of 4, zeros before a game's first frame; a lost life terminates
    but the game and its stack go on; a game over or the time limit resets inside the step; scores come raw."""
    steps = [
        *play(atari.make_envs("toy_envs:ToyBreakout-v0", 2), 300, 0),
        *play(atari.make_envs("BreakoutNoFrameskip-v4", 2), 300, 0),
    ]
    assert steps[0]["obs"].shape == (2, 4, 84, 84) and steps[0]["obs"].dtype == np.uint8
    assert not steps[0]["obs"][:, :3].any() and steps[0]["obs"][:, 3].any()
    kinds = {"life lost": 0, "game over": 0, "truncated": 0}
    for step in steps:
        for e in range(2):
            assert np.array_equal(step["true_next"][e, :3], step["obs"][e, 1:])  # the stack moves on by one frame
            if step["reset"][e]:
                assert not step["next_obs"][e, :3].any()  # a new game: zeros before its first frame
                kinds["truncated" if step["truncations"][e] else "game over"] += 1
            else:
                assert np.array_equal(step["next_obs"][e], step["true_next"][e])
                kinds["life lost"] += int(step["terminations"][e])
    assert min(kinds.values()) >= 2, kinds
    invaders = play(atari.make_envs("SpaceInvadersNoFrameskip-v4", 1), 300, seed=0)
    assert max(float(step["scores"].max()) for step in invaders) > 1  # raw points: 5 to 30 an invader


def test_sampled_stacks_equal_the_env_stacks_byte_for_byte():
    """Two envs, life losses, game resets, truncations and ring wrap-around (400 steps into rings of 250): every
    sample is one of the env's own transitions, (obs, true next obs) with its action, clipped reward and termination,
    and none of the first 150 (overwritten). Read through sample() alone."""
    n, slots = 2, 250
    rb = atari.FrameReplayBuffer(n * slots, n, torch.device("cpu"))
    steps = play(atari.make_envs("toy_envs:ToyBreakout-v0", n), 400, seed=0)
    rb.start(steps[0]["obs"][:, -1])
    played = {}  # (obs, true next obs) bytes -> each (action, clipped reward, termination) played from there, by step
    for k, step in enumerate(steps):
        for e in range(n):
            key = step["obs"][e].tobytes() + step["true_next"][e].tobytes()
            outcome = int(step["actions"][e]), float(np.sign(step["scores"][e])), bool(step["terminations"][e])
            played.setdefault(key, {})[outcome] = k  # a still ball: other actions, the same frames
        rewards, terminations = np.sign(step["scores"]), step["terminations"]
        rb.add(step["actions"], rewards, terminations, step["reset"], step["true_next"][:, -1], step["next_obs"][:, -1])
    batch = rb.sample(4000, np.random.default_rng(0), torch.device("cpu"))
    seen = {"terminated": 0, "at a game's start": 0}
    for i in range(4000):
        obs, next_obs = batch["obs"][i].numpy(), batch["next_obs"][i].numpy()
        outcome = int(batch["actions"][i]), float(batch["rewards"][i]), bool(batch["terminated"][i])
        assert played[obs.tobytes() + next_obs.tobytes()][outcome] >= 400 - slots + 4  # not overwritten in the ring
        seen["terminated"] += int(outcome[2])
        seen["at a game's start"] += int(not obs[2].any())
    assert min(seen.values()) >= 10, seen


def whole_games(steps: list[dict]) -> list[tuple[int, float, int]]:
    """(env step at its end, raw score, length in agent steps) of each whole game in RecordingEnvs' steps."""
    n = len(steps[0]["scores"])
    games, score, length = [], np.zeros(n), np.zeros(n, int)
    for k, step in enumerate(steps):
        score, length = score + step["scores"], length + 1
        for e in np.flatnonzero(step["reset"]):
            games.append((n * (k + 1), float(score[e]), int(length[e])))
            score[e], length[e] = 0, 0
    return games


def test_the_run_stores_and_logs_what_its_envs_returned(workdir, monkeypatch):
    """The script's own loop (random actions, so games end in both ways; each point scored counts 3) stores every
    transition its envs returned, and nothing else: frames, action, reward clipped to 1, termination, the true final
    frame of each game (its replay, saved in a checkpoint, read through sample() alone); it logs whole
    games' raw scores and lengths, and its --save-model evaluation whole games' raw scores."""
    made, make_envs = [], atari.make_envs
    monkeypatch.setattr(atari, "make_envs", lambda *a: made.append(RecordingEnvs(make_envs(*a), 3.0)) or made[-1])
    monkeypatch.chdir(workdir)
    flags = dict(num_envs=2, total_timesteps=600, checkpoint_frequency=600, checkpoint_buffer=True, cuda=False)
    flags |= dict(env_id="toy_envs:ToyBreakout-v0", learning_starts=200, buffer_size=1000, batch_size=8)
    train_in_process(
        atari, **flags, target_network_frequency=50, start_e=1.0, end_e=1.0, save_model=True, eval_episodes=2
    )
    steps = made[0].steps
    played = {
        (step["obs"][e].tobytes(), step["true_next"][e].tobytes(), int(step["actions"][e]))
        + (float(np.sign(step["scores"][e])), bool(step["terminations"][e]))
        for step in steps
        for e in range(2)
    }
    rb = atari.FrameReplayBuffer(1000, 2, torch.device("cpu"))  # 500 frames an env: no wrap-around in 300 steps
    rb.load_state_dict(load_saved(only_run_dir(workdir))["buffer"])
    stored, rng = set(), np.random.default_rng(0)
    for _ in range(12):  # 12,000 draws of 600 transitions: each is drawn (a miss: about 600 * exp(-20))
        batch = rb.sample(1000, rng, torch.device("cpu"))
        frames = [[stack.tobytes() for stack in batch[k].numpy()] for k in ("obs", "next_obs")]
        scalars = [batch[k].tolist() for k in ("actions", "rewards", "terminated")]
        stored |= {(*row[:4], bool(row[4])) for row in zip(*frames, *scalars, strict=True)}
    assert len(steps) == 300 and stored == played and max(s["scores"].max() for s in steps) == 3
    games, run_dir = whole_games(steps), only_run_dir(workdir)
    logged = [read_metrics(run_dir, f"charts/episodic_{m}") for m in ("return", "length")]
    logged = sorted((int(r["global_step"]), float(r["value"]), int(n["value"])) for r, n in zip(*logged, strict=True))
    assert logged == sorted(games) and {length == 150 for *_, length in games} == {True, False}  # time limit, game over
    assert any(k for k, step in enumerate(steps) if (step["terminations"] & ~step["reset"]).any())  # lost lives
    evaluated = [float(r["value"]) for r in read_metrics(run_dir, "eval/episodic_return")]
    assert evaluated == [score for _, score, _ in whole_games(made[1].steps)[:2]]


def test_the_network_sees_frames_scaled_to_0_1():
    q_network, seen = atari.QNetwork(4), []
    first = next(m for m in q_network.modules() if isinstance(m, nn.Conv2d))
    first.register_forward_pre_hook(lambda module, inputs: seen.append(float(inputs[0].max())))
    q_network(torch.full((2, 4, 84, 84), 255, dtype=torch.uint8))
    assert seen == [1.0]


def test_games_reset_with_and_without_lives():
    """A lost life is no reset; a game over is (the new game's lives are back), as is the end of a game without
    lives (Pong: 0 before and after) and a time limit."""
    terminated, truncated = np.array([1, 1, 1, 0, 0], bool), np.array([0, 0, 0, 1, 0], bool)
    lives_before, lives = np.array([3, 1, 0, 2, 2]), np.array([2, 5, 0, 2, 2])
    assert atari.games_reset(terminated, truncated, lives, lives_before).tolist() == [0, 1, 1, 1, 0]


def test_the_agent_acts_with_the_online_network_as_it_is(workdir, monkeypatch):
    """Greedy from the start (epsilon 0): the action chosen after the checkpoint at env step 296 comes from the
    weights that checkpoint holds as the online network's (the target network's last copy is from step 256)."""
    acted_with = []  # each action choice's online weights, copied for the 297th only: the first after step 296

    def record(arguments):
        weights = arguments["q_network"].state_dict()
        acted_with.append({k: v.clone() for k, v in weights.items()} if len(acted_with) == 296 else None)

    monkeypatch.setattr(atari, "greedy_actions", spy(atari.greedy_actions, record))
    monkeypatch.chdir(workdir)
    flags = dict(env_id="toy_envs:ToyBreakout-v0", total_timesteps=300, learning_starts=200, buffer_size=1000)
    train_in_process(atari, **flags, batch_size=8, target_network_frequency=64, checkpoint_frequency=296, cuda=False,
                     start_e=0.0, end_e=0.0)  # fmt: skip
    saved = load_saved(only_run_dir(workdir))
    assert saved["counters"]["global_step"] == 296 and len(acted_with) >= 297
    for name, value in acted_with[296].items():
        torch.testing.assert_close(value, saved["q_network"][name], rtol=0, atol=0)


@pytest.mark.parametrize("max_grad_norm", [0.0, 0.001])
def test_the_gradient_step_is_the_reference(tmp_path, max_grad_norm):
    """Runs to env steps 207 and 208 (random actions, so one run cut at two points). The gradient step taken at 208
    trains on the replay as it was after step 207 (the envs play step 208 meanwhile): it must equal one computed here
    from the checkpoint at 207, with a Huber loss on fresh gradients (the step at 204 must not carry over), the
    gradient's norm clipped where asked (0.001: far below its norm) and Adam."""
    checkpoints = {}
    for steps in (207, 208):
        cwd = tmp_path / str(steps)
        cwd.mkdir()
        flags = ["--total-timesteps", str(steps), "--checkpoint-frequency", str(steps), "--checkpoint-buffer"]
        flags += ["--max-grad-norm", str(max_grad_norm)]
        run_script("dqn_atari.py", *TOY, *SHORT, *flags, "--start-e", "1", "--end-e", "1", "--no-cuda", cwd=cwd)
        checkpoints[steps] = load_saved(only_run_dir(cwd))
    before, after = checkpoints[207], checkpoints[208]
    assert (before["counters"]["gradient_steps"], after["counters"]["gradient_steps"]) == (1, 2)
    args = atari.Args(**before["args"])
    n_actions = list(before["q_network"].values())[-1].shape[0]  # the output layer's bias
    q_network, target_network = atari.QNetwork(n_actions), atari.QNetwork(n_actions)
    q_network.load_state_dict(before["q_network"])
    target_network.load_state_dict(before["target_network"])
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, fused=True)
    optimizer.load_state_dict(before["optimizer"])
    sample_rng = np.random.default_rng()
    sample_rng.bit_generator.state = before["sample_rng"]
    rb = atari.FrameReplayBuffer(args.buffer_size, 1, torch.device("cpu"))
    rb.load_state_dict(before["buffer"])
    batch = rb.sample(args.batch_size, sample_rng, torch.device("cpu"))
    with torch.no_grad():
        next_values = atari.next_state_value(q_network, target_network, batch["next_obs"])
        targets = atari.td_target(batch["rewards"], batch["terminated"], next_values, args.gamma)
    q_taken = q_network(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
    optimizer.zero_grad()
    torch.nn.functional.smooth_l1_loss(q_taken, targets).backward()
    if max_grad_norm > 0:
        assert torch.nn.utils.clip_grad_norm_(q_network.parameters(), max_grad_norm) > 10 * max_grad_norm
    optimizer.step()
    for name, value in q_network.state_dict().items():
        torch.testing.assert_close(value, after["q_network"][name], rtol=0, atol=1e-6)


def test_buffer_memory_per_transition():
    """7,074 bytes a transition (frame 7,056 + 18), and one frame of zeros per env; what it reports is what it holds
    (its state, which a checkpoint saves, besides a few counters per env)."""
    assert atari.replay_nbytes(1001, 2) - atari.replay_nbytes(1000, 2) == 7_074

    def held(capacity: int) -> int:
        state = atari.FrameReplayBuffer(capacity, 2, torch.device("cpu")).state_dict()
        return sum(t.numel() * t.element_size() for t in state.values())

    assert held(2000) - held(1000) == 1000 * 7_074
    assert 0 <= held(1000) - atari.replay_nbytes(1000, 2) <= 2 * 8 * 4  # counters: a few int64 an env


def test_smoke_two_envs_reaches_training_logs_whole_games_and_records_video(workdir):
    flags = ["--num-envs", "2", "--save-model", "--eval-episodes", "2", "--capture-video"]
    proc = run_script("dqn_atari.py", *TOY, *SHORT, *flags, cwd=workdir)
    assert proc.stdout.splitlines()[0].startswith(f"device: {DEVICE}")
    run_dir = only_run_dir(workdir)
    assert "eval: mean return" in proc.stdout and len(read_metrics(run_dir, "eval/episodic_return")) == 2
    counts = summary(proc.stdout)
    assert counts["env steps"] == 300 and counts["gradient steps"] == 300 // 4 - 200 // 4
    assert counts["target updates"] == 300 // 50 - 200 // 50
    lengths = [int(r["value"]) for r in read_metrics(run_dir, "charts/episodic_length")]
    assert lengths and max(lengths) <= 150  # whole games: lost lives end no episode; the time limit is 150 agent steps
    assert read_metrics(run_dir, "losses/td_loss")
    videos = list((workdir / "videos").rglob("*.mp4"))
    assert videos and all(v.stat().st_size > 1000 for v in videos)


@pytest.mark.parametrize(
    "flags,expected",
    [
        (["--env-id", "CartPole-v1"], "not an ALE"),
        (["--env-id", "ALE/Breakout-v5"], "NoFrameskip"),
        (["--batch-size", "64", "--buffer-size", "32"], "--batch-size"),
        (["--num-envs", "4", "--buffer-size", "20", "--batch-size", "4"], "at least 8 frames"),
        (["--num-envs", "4", "--learning-starts", "3"], "--learning-starts"),
        (["--buffer-size", str(10**9)], "bytes"),
        (["--max-grad-norm", "-1"], "--max-grad-norm"),
        (["--env-id", "toy_envs:ToyBreakoutRam-v0"], "RGB screen"),
        (["--env-id", "toy_envs:ToyBreakoutMode-v0"], "'mode': 4"),
        (["--env-id", "NoSuchGameNoFrameskip-v4"], "--env-id"),
        (["--total-timesteps", "0"], "--total-timesteps"),
        (["--learning-starts", "500", "--total-timesteps", "500"], "--learning-starts"),
        (["--gamma", "1.5"], "--gamma"),
        (["--tau", "0"], "--tau"),
        (["--start-e", "0.1", "--end-e", "0.5"], "--end-e"),
        (["--exploration-fraction", "0"], "--exploration-fraction"),
        (["--resume", "no/such/checkpoint.pt"], "--resume"),
        (["--seed", "-1"], "--seed"),
        (["--num-envs", "0"], "--num-envs"),
        (["--seed", str(2**31 - 10_000_001)], "--seed"),  # ALE's int32 seeds: a game at env step 10M would overflow
    ],
)
def test_bad_input(workdir, flags, expected):
    proc = run_script("dqn_atari.py", *flags, "--track", cwd=workdir, check=False)
    assert_refused(proc, expected)
    assert list(workdir.iterdir()) == []


def test_without_proc_meminfo_the_replay_must_fit_in_the_machines_ram(monkeypatch, capsys, no_proc_meminfo):
    """macOS has no /proc/meminfo: the replay is then checked against 80% of all RAM, not what is available."""
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    for share in (0.5, 0.9):  # of all RAM, in frames
        monkeypatch.setattr(sys, "argv", ["dqn_atari.py", "--buffer-size", str(int(share * ram / (84 * 84 + 18)))])
        with pytest.raises(SystemExit) if share > 0.8 else contextlib.nullcontext():
            atari.parse_args()
    assert "over 80% of" in capsys.readouterr().err


def test_the_largest_seed_accepted_resumes_and_evaluates(workdir):
    """The largest --seed accepted plays a run resumed at its last step (its games reseeded at seed + env step) and
    the evaluation (seed + 1): ALE's seeds are int32."""
    seed, flags = 2**31 - 300 - 2 - 1, ["--num-envs", "2", "--checkpoint-frequency", "298"]  # SHORT: 300 steps
    run_script("dqn_atari.py", *TOY, *SHORT, *flags, "--seed", str(seed), cwd=workdir)
    checkpoint = only_run_dir(workdir) / "checkpoint.pt"
    run_script("dqn_atari.py", "--resume", str(checkpoint), "--save-model", cwd=workdir)
    assert len(read_metrics(only_run_dir(workdir), "eval/episodic_return")) == 10


def test_a_resumed_run_frees_the_checkpoints_replay(workdir, monkeypatch):
    """Once loaded into the run's buffer, the checkpoint's copy of the replay (7 GB at 1M frames) is no longer held."""
    run_script("dqn_atari.py", *TOY, *SHORT, "--checkpoint-frequency", "200", "--checkpoint-buffer", cwd=workdir)
    monkeypatch.setattr(sys, "argv", ["dqn_atari.py", "--resume", str(only_run_dir(workdir) / "checkpoint.pt")])
    monkeypatch.chdir(workdir)
    args, checkpoint = atari.parse_args()
    replay = [weakref.ref(v) for v in checkpoint["buffer"].values() if torch.is_tensor(v)]
    run = atari.Run(args, checkpoint)
    del checkpoint
    atari.train(args, run)
    gc.collect()
    assert replay and all(tensor() is None for tensor in replay)
    assert run.finish() == 0


def metrics_of_runs(tmp_path, *flag_sets: list[str]) -> list[list[tuple]]:
    """One short ToyBreakout run per flag set, each in its own folder: its metric rows, SPS (a timing) left out."""
    runs = []
    for i, flags in enumerate(flag_sets):
        workdir = tmp_path / f"run{i}"
        workdir.mkdir()
        run_script("dqn_atari.py", *TOY, *SHORT, *flags, cwd=workdir)
        rows = read_metrics(only_run_dir(workdir))
        runs.append([(r["global_step"], r["metric"], r["value"]) for r in rows if r["metric"] != "charts/SPS"])
    return runs


def count_losses(rows: list[tuple]) -> int:
    return sum(metric == "losses/td_loss" for _, metric, _ in rows)


def test_same_seed_same_run_with_threads_stepping_the_envs(tmp_path):
    first, second, other_seed = metrics_of_runs(tmp_path, ["--num-envs", "3"], ["--num-envs", "3"], ["--seed", "2"])
    assert count_losses(first) >= 1 and first == second and first != other_seed


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_storing_frames_does_not_wait_for_the_gpu():
    """With about a second of work queued on the GPU, a step's frame writes from host memory return at once."""
    rb = atari.FrameReplayBuffer(64, 2, torch.device("cuda"))
    for _ in range(5):  # pinned blocks of this size cached
        rb.start(np.zeros((2, 4, 84, 84), np.uint8)[:, -1])
    torch.cuda.synchronize()
    torch.cuda._sleep(2_000_000_000)  # GPU clock cycles: about a second
    start = time.perf_counter()
    rb.start(np.full((2, 4, 84, 84), 7, np.uint8)[:, -1])  # each stack's newest frame, a strided view as in the loop
    assert time.perf_counter() - start < 0.2 and not torch.cuda.current_stream().query()
    torch.cuda.synchronize()
    assert (rb.frames[:, 5] == 7).all() and (rb.frames[:, 4] == 0).all()  # the sixth write of each env, and the fifth


def test_a_non_finite_loss_stops_the_run_at_its_step(workdir):
    """A rate of 1e30 blows the weights up in the first gradient step (env step 204); the second (208) has a
    non-finite loss, which stops the run there, with exit code 1, long before its end at 302."""
    flags = ["--total-timesteps", "302", "--learning-starts", "200", "--buffer-size", "1000", "--batch-size", "8"]
    proc = run_script("dqn_atari.py", *TOY, *flags, "--learning-rate", "1e30", cwd=workdir, check=False)
    assert proc.returncode == 1 and "non-finite TD loss" in proc.stderr, proc.stderr
    assert "at env step 208" in proc.stderr  # the second gradient step: read at once, not every 100th


def test_video_games_are_counted_when_envs_end_together(workdir, monkeypatch):
    """Env 0's games are numbered 0, 1, 2, ... and games 0, 1 and 8 recorded, also when env 1 ends in the same step."""
    saved = []
    monkeypatch.setattr(save_video, "save_video", lambda *args, episode_index, fps: saved.append(episode_index))
    monkeypatch.chdir(workdir)
    run, frame = atari.Run(atari.Args(capture_video=True, num_envs=2), None), np.zeros((84, 84), np.uint8)
    for _ in range(9):
        run.log_games(0, np.zeros(2), np.array([False, False]), frame)
        run.log_games(0, np.zeros(2), np.array([True, True]), frame)
    assert run.finish() == 0 and saved == [0, 1, 8] and run.video_games == 9


def test_ctrl_c_to_the_process_group_checkpoints(workdir):
    """A terminal's Ctrl-C reaches every process of the group; ALE's env threads are not processes, and the run
    stops at a step boundary with a checkpoint."""
    flags = [*TOY, *SHORT, "--total-timesteps", "100000", "--num-envs", "2"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "dqn_atari.py"), *flags],
        cwd=workdir,
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    for line in proc.stdout:
        if line.startswith("step"):  # the training loop is running
            break
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, stderr
    assert "stopped by signal 2" in stdout and (only_run_dir(workdir) / "checkpoint.pt").exists()


def test_checkpoint_and_resume(workdir):
    run_script("dqn_atari.py", *TOY, *SHORT, "--checkpoint-frequency", "200", "--checkpoint-buffer", cwd=workdir)
    checkpoint = only_run_dir(workdir) / "checkpoint.pt"
    state = load_saved(checkpoint)
    assert state["counters"]["global_step"] == 200
    proc = run_script("dqn_atari.py", "--resume", str(checkpoint), "--checkpoint-frequency", "300", cwd=workdir)
    assert "resumed" in proc.stdout and "at env step 200" in proc.stdout
    counts = summary(proc.stdout)
    assert counts["env steps"] == 300 and counts["gradient steps"] == 300 // 4 - 200 // 4  # the buffer came back
    one_run = np.random.default_rng(1)  # the exploration stream of one run to 300: a draw per env step
    for _ in range(300):
        one_run.random(1)
    assert load_saved(checkpoint)["explore_rng"] == one_run.bit_generator.state
    # Refused in one line naming the flag, nothing written: a flag changed beside --resume, and a checkpoint
    # written before a flag existed.
    files_before = sorted(workdir.rglob("*"))
    resume = ["dqn_atari.py", "--resume", str(checkpoint)]
    changed_flag = run_script(*resume, "--total-timesteps", "999", cwd=workdir, check=False)
    state["args"].pop("max_grad_norm")
    torch.save(state, checkpoint)
    old_checkpoint = run_script(*resume, cwd=workdir, check=False)
    for refused, expected in ((changed_flag, "--total-timesteps"), (old_checkpoint, "--max-grad-norm")):
        assert_refused(refused, expected)
    assert sorted(workdir.rglob("*")) == files_before
