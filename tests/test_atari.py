"""dqn_atari.py: preprocessing, the frame-sharing replay memory against the env's own stacks, and short runs."""

import os
import signal
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
import toy_envs  # noqa: F401  (registers ToyBreakout-v0: Breakout truncated at 400 frames)
from conftest import DEVICE, ROOT, load_script, only_run_dir, read_metrics, run_script, script_env, summary
from gymnasium.vector import AutoresetMode

atari = load_script("dqn_atari.py")
TOY = ["--env-id", "toy_envs:ToyBreakout-v0"]
SHORT = ["--total-timesteps", "300", "--learning-starts", "200", "--target-network-frequency", "50"]
SHORT += ["--buffer-size", "1000", "--batch-size", "8"]


def make_envs(n: int, env_id: str = "ToyBreakout-v0"):
    thunks = [atari.make_env(env_id, i, False, "test") for i in range(n)]
    return gym.vector.SyncVectorEnv(thunks, autoreset_mode=AutoresetMode.SAME_STEP)


def test_preprocessing_shapes_dtype_and_clipped_rewards():
    """Space Invaders scores 5 to 30 points an invader, so random play meets rewards that clipping must cut to 1."""
    env = atari.make_env("SpaceInvadersNoFrameskip-v4", 0, False, "test")()
    obs, _ = env.reset(seed=0)
    env.action_space.seed(0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert np.array_equal(obs[0], obs[3])  # a new episode's stack is padded with its first frame
    rewards = []
    for _ in range(300):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        rewards.append(reward)
        if terminated or truncated:
            obs, _ = env.reset()
    assert set(rewards) == {0.0, 1.0}
    n = env.action_space.n
    assert atari.QNetwork(4, n)(torch.as_tensor(obs[None])).shape == (1, n)


def test_episode_statistics_are_whole_games_across_lives():
    envs = make_envs(1, "BreakoutNoFrameskip-v4")
    envs.reset(seed=1)
    envs.action_space.seed(1)
    life_ends, clipped = 0, 0.0
    while True:
        _, reward, terminated, truncated, infos = envs.step(envs.action_space.sample())
        clipped += reward[0]
        life_ends += int(terminated[0] or truncated[0])
        if "episode" in infos.get("final_info", {}):
            break
    assert life_ends == 5  # Breakout's five lives: four life losses, then the game's end, one episode
    game = infos["final_info"]["episode"]
    assert game["r"][0] >= clipped and game["l"][0] > 4 * 100  # raw score; length in frames


def test_sampled_stacks_equal_the_env_stacks_byte_for_byte():
    """Two envs, life losses, truncations and ring wrap-around: every sample is the env's own (obs, next_obs)."""
    n, slots = 2, 250
    envs = make_envs(n)
    envs.action_space.seed(0)
    rb = atari.FrameReplayBuffer(n * slots, n, 4, (84, 84), torch.device("cpu"))
    obs, _ = envs.reset(seed=0)
    rb.start(obs[:, -1])
    truth, kinds = {}, {"first": set(), "terminated": set(), "truncated": set()}
    for _ in range(400):
        actions = envs.action_space.sample()
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        dones = terminations | truncations
        real_next = atari.true_next_obs(next_obs, dones, infos)
        for e in range(n):
            key = (e, int(rb.written[e]) - 1)
            truth[key] = (obs[e].copy(), real_next[e].copy(), rewards[e], terminations[e])
            if key[1] == rb.current_start[e]:
                kinds["first"].add(key)
            for kind, happened in (("terminated", terminations[e]), ("truncated", truncations[e])):
                if happened:
                    kinds[kind].add(key)
        rb.add(actions, rewards, terminations, dones, real_next[:, -1], next_obs[:, -1])
        obs = next_obs
    assert all(len(keys) >= 3 for keys in kinds.values()), {k: len(v) for k, v in kinds.items()}
    assert rb.written.min() > slots  # the rings have wrapped

    rows = rb.sample(4000, np.random.default_rng(0))
    batch = rb.gather(torch.from_numpy(rows))
    seen = set()
    for i, key in enumerate(zip(rows[:, 0].astype(int).tolist(), rows[:, 1].astype(int).tolist(), strict=True)):
        obs_true, next_true, reward, terminated = truth[key]
        assert np.array_equal(batch["obs"][i].numpy(), obs_true), key
        assert np.array_equal(batch["next_obs"][i].numpy(), next_true), key
        assert batch["rewards"][i] == reward and batch["terminated"][i] == float(terminated)
        assert key[1] >= rb.written[key[0]] - slots + 3  # never a stack with an overwritten frame
        seen.add(key)
    assert all(seen & keys for keys in kinds.values())  # samples cover episode starts, life losses, truncations


def test_the_run_stores_what_its_envs_returned(workdir):
    """The test above feeds the buffer itself; here the script's own loop does. The stored actions, replayed in
    fresh envs reset as the run's were, must give back every stored frame, reward and termination, and the true
    final frame after a life loss, a game over or a time limit."""
    flags = ["--num-envs", "2", "--checkpoint-frequency", "300", "--checkpoint-buffer", "--no-cuda"]
    run_script("dqn_atari.py", *TOY, *SHORT, *flags, cwd=workdir)
    rb = atari.FrameReplayBuffer(1000, 2, 4, (84, 84), torch.device("cpu"))
    rb.load_state_dict(torch.load(only_run_dir(workdir) / "checkpoint.pt", weights_only=True)["buffer"])
    assert (rb.written < rb.slots).all()  # no wrap-around: a slot's number is its place in the ring
    slots = [np.flatnonzero(rb.starts_transition[e, : rb.written[e]]) for e in range(2)]  # each env's transitions
    assert [len(s) for s in slots] == [150, 150]
    envs = make_envs(2)
    obs, _ = envs.reset(seed=1)  # the run's reset: --seed 1 at env step 0
    ended = {"terminated": 0, "truncated": 0}
    for k in range(150):
        j = [slots[e][k] for e in range(2)]
        next_obs, rewards, terminations, truncations, infos = envs.step(rb.actions[[0, 1], j].astype(np.int64))
        real_next = atari.true_next_obs(next_obs, terminations | truncations, infos)
        for e in range(2):
            assert torch.equal(rb.frames[e, j[e]], torch.from_numpy(obs[e, -1])), (e, k)
            assert torch.equal(rb.frames[e, j[e] + 1], torch.from_numpy(real_next[e, -1])), (e, k)
            assert rb.terminated[e, j[e]] == terminations[e] and rb.rewards[e, j[e]] == rewards[e], (e, k)
        ended["terminated"] += int(terminations.sum())
        ended["truncated"] += int(truncations.sum())
        obs = next_obs
    assert min(ended.values()) >= 1, ended


def test_the_gradient_step_is_the_reference(tmp_path):
    """Runs to env steps 204 and 208 (random actions, so the two are one run cut at two points): the second run's
    gradient step at 208 must equal one computed here from the checkpoint at 204 and the replay at 208, with a
    Huber loss on fresh gradients (the first step's gradients, at 204, must not carry over) and Adam."""
    checkpoints = {}
    for steps in (204, 208):
        cwd = tmp_path / str(steps)
        cwd.mkdir()
        flags = ["--total-timesteps", str(steps), "--checkpoint-frequency", str(steps), "--checkpoint-buffer"]
        run_script("dqn_atari.py", *TOY, *SHORT, *flags, "--start-e", "1", "--end-e", "1", "--no-cuda", cwd=cwd)
        checkpoints[steps] = torch.load(only_run_dir(cwd) / "checkpoint.pt", weights_only=True)
    before, after = checkpoints[204], checkpoints[208]
    assert (before["counters"]["gradient_steps"], after["counters"]["gradient_steps"]) == (1, 2)
    args = atari.Args(**before["args"])
    n_actions = list(before["q_network"].values())[-1].shape[0]  # the output layer's bias
    q_network, target_network = atari.QNetwork(4, n_actions), atari.QNetwork(4, n_actions)
    q_network.load_state_dict(before["q_network"])
    target_network.load_state_dict(before["target_network"])
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, fused=True)
    optimizer.load_state_dict(before["optimizer"])
    sample_rng = np.random.default_rng()
    sample_rng.bit_generator.state = before["sample_rng"]
    rb = atari.FrameReplayBuffer(args.buffer_size, 1, 4, (84, 84), torch.device("cpu"))
    rb.load_state_dict(after["buffer"])
    batch = rb.gather(torch.from_numpy(rb.sample(args.batch_size, sample_rng)))
    with torch.no_grad():
        next_values = atari.next_state_value(q_network, target_network, batch["next_obs"])
        targets = atari.td_target(batch["rewards"], batch["terminated"], next_values, args.gamma)
    q_taken = q_network(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
    optimizer.zero_grad()
    torch.nn.functional.smooth_l1_loss(q_taken, targets).backward()
    optimizer.step()
    for name, value in q_network.state_dict().items():
        torch.testing.assert_close(value, after["q_network"][name], rtol=0, atol=1e-6)


def test_buffer_memory_per_transition():
    assert atari.FrameReplayBuffer.nbytes(1, (84, 84)) <= 7_500
    rb = atari.FrameReplayBuffer(1000, 2, 4, (84, 84), torch.device("cpu"))
    per_env = ("written", "current_start")  # counters, not storage
    stored = sum(t.numel() * t.element_size() for name, t in rb.state_dict().items() if name not in per_env)
    assert stored == atari.FrameReplayBuffer.nbytes(1000, (84, 84))


def test_smoke_two_envs_reaches_training_and_logs_whole_games(workdir):
    proc = run_script(
        "dqn_atari.py", *TOY, *SHORT, "--num-envs", "2", "--save-model", "--eval-episodes", "2", cwd=workdir
    )
    assert proc.stdout.splitlines()[0].startswith(f"device: {DEVICE}")
    assert "eval: mean return" in proc.stdout and len(read_metrics(only_run_dir(workdir), "eval/episodic_return")) == 2
    counts = summary(proc.stdout)
    assert counts["env steps"] == 300 and counts["gradient steps"] == 300 // 4 - 200 // 4
    assert counts["target updates"] == 300 // 50 - 200 // 50
    run_dir = only_run_dir(workdir)
    lengths = [int(r["value"]) for r in read_metrics(run_dir, "charts/episodic_length")]
    assert 400 in lengths  # a game cut by the 400-frame limit is one episode, however many lives it lost
    assert read_metrics(run_dir, "losses/td_loss")


@pytest.mark.parametrize(
    "flags,expected",
    [
        (["--env-id", "CartPole-v1"], "not an ALE"),
        (["--env-id", "ALE/Breakout-v5"], "NoFrameskip"),
        (["--batch-size", "64", "--buffer-size", "32"], "--batch-size"),
        (["--num-envs", "4", "--buffer-size", "20", "--batch-size", "4"], "ring of at least"),
        (["--buffer-size", str(10**9)], "bytes"),
        (["--max-grad-norm", "-1"], "--max-grad-norm"),
        (["--env-id", "toy_envs:ToyBreakoutRam-v0"], "not the screen"),
        (["--env-id", "NoSuchGameNoFrameskip-v4"], "--env-id"),
        (["--total-timesteps", "0"], "--total-timesteps"),
        (["--learning-starts", "500", "--total-timesteps", "500"], "--learning-starts"),
        (["--gamma", "1.5"], "--gamma"),
        (["--tau", "0"], "--tau"),
        (["--start-e", "0.1", "--end-e", "0.5"], "--end-e"),
        (["--exploration-fraction", "0"], "--exploration-fraction"),
        (["--resume", "no/such/checkpoint.pt"], "--resume"),
        (["--seed", "-1"], "--seed"),
    ],
)
def test_bad_input(workdir, flags, expected):
    proc = run_script("dqn_atari.py", *flags, "--track", cwd=workdir, check=False)
    assert proc.returncode == 2 and expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert list(workdir.iterdir()) == []


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


def test_async_envs_give_the_same_run(tmp_path):
    in_process, subprocesses = metrics_of_runs(tmp_path, ["--num-envs", "2"], ["--num-envs", "2", "--async-envs"])
    assert count_losses(in_process) >= 1 and in_process == subprocesses


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graphs_give_the_eager_numbers(tmp_path):
    """200 gradient steps: 3 eager warm-ups, then replays; losses are logged at steps 1 and 101."""
    longer = ["--total-timesteps", "1000"]
    graphed, eager = metrics_of_runs(tmp_path, [*longer, "--cuda-graphs"], [*longer, "--no-cuda-graphs"])
    assert count_losses(graphed) >= 2 and graphed == eager


def test_ctrl_c_to_the_process_group_with_async_envs_checkpoints(workdir):
    """A terminal's Ctrl-C reaches the env workers too; they ignore it and the run stops with a checkpoint."""
    flags = [*TOY, *SHORT, "--total-timesteps", "100000", "--async-envs", "--num-envs", "2"]
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
    state = torch.load(checkpoint, weights_only=True)
    assert state["counters"]["global_step"] == 200 and int(state["buffer"]["written"][0]) > 200
    proc = run_script("dqn_atari.py", "--resume", str(checkpoint), "--checkpoint-frequency", "300", cwd=workdir)
    assert "resumed" in proc.stdout and "at env step 200" in proc.stdout
    counts = summary(proc.stdout)
    assert counts["env steps"] == 300 and counts["gradient steps"] == 300 // 4 - 200 // 4
    one_run = np.random.default_rng(1)  # the exploration stream of one run to 300: a draw per env step
    for _ in range(300):
        one_run.random(1)
    assert torch.load(checkpoint, weights_only=True)["explore_rng"] == one_run.bit_generator.state
    # Refused in one line naming the flag, nothing written: a flag changed beside --resume, and a checkpoint
    # written before a flag existed.
    files_before = sorted(workdir.rglob("*"))
    resume = ["dqn_atari.py", "--resume", str(checkpoint)]
    changed_flag = run_script(*resume, "--total-timesteps", "999", cwd=workdir, check=False)
    state["args"].pop("max_grad_norm")
    torch.save(state, checkpoint)
    old_checkpoint = run_script(*resume, cwd=workdir, check=False)
    for refused, expected in ((changed_flag, "--total-timesteps"), (old_checkpoint, "--max-grad-norm")):
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and expected in refused.stderr
    assert sorted(workdir.rglob("*")) == files_before
