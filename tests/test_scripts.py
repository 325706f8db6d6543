"""Behaviour of dqn.py and double_dqn.py run as a user runs them: one parametrized suite keeps the two in step
(and dqn_atari.py where a case is the same for all three: a --resume file that is not a checkpoint)."""

import ast
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import (
    DEVICE,
    ROOT,
    SCRIPTS,
    SHORT,
    assert_refused,
    gradient_steps,
    load_saved,
    load_script,
    metric_by_step,
    only_run_dir,
    read_metrics,
    replay_rows,
    run_dirs,
    run_script,
    run_stopped_by_signal,
    script_env,
    spy,
    summary,
    train_in_process,
)
from edits import EDITS

TOY = ["--env-id", "toy_envs:ToyChain-v0"]


@pytest.fixture(params=SCRIPTS)
def script(request):
    return request.param


def args_class(script: str) -> ast.ClassDef:
    """The `Args` dataclass in the script's source."""
    tree = ast.parse((ROOT / script).read_text())
    return next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "Args")


def args_docstrings(script: str) -> dict[str, str]:
    """Each `Args` field's docstring, read from the script's source (tyro reads the same)."""
    body = args_class(script).body
    return {
        field.target.id: doc.value.value
        for field, doc in zip(body, body[1:], strict=False)
        if isinstance(field, ast.AnnAssign) and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
    }


@pytest.mark.parametrize("name", [*SCRIPTS, "dqn_atari.py"])
def test_help_lists_every_flag_with_its_doc(name, workdir):
    out = run_script(name, "--help", cwd=workdir, env=script_env(COLUMNS="1000")).stdout
    words = " ".join(re.sub("[│╭╮╰╯─]", " ", out).split())  # the help's text without its box or line breaks
    docs = args_docstrings(name)
    assert docs.keys() == load_script(name).Args.__dataclass_fields__.keys()  # no field without a docstring
    for field, doc in docs.items():
        assert f"--{field.replace('_', '-')}" in out and " ".join(doc.split()) in words, field


def assert_epsilon_follows_the_schedule(run_dir: Path, num_envs: int, duration: float) -> None:
    """Logged at env step s, epsilon is the one the envs acted with, the schedule's value at step s - num_envs:
    linear from 1 to the default end_e, 0.04, over `duration` env steps, whatever num_envs is."""
    logged = metric_by_step(run_dir, "charts/epsilon")
    assert len(logged) >= 4 and min(logged.values()) == 0.04 < max(logged.values())
    for step, epsilon in logged.items():  # the default linear schedule (an edited one fails here)
        assert epsilon == pytest.approx(max(1 - 0.96 * (step - num_envs) / duration, 0.04)), step


TOY_CHAIN_400 = dict(env_id="toy_envs:ToyChain-v0", total_timesteps=400, learning_starts=200)  # 24 gradient steps


def decayed_rate(script: str, total: int, step: int, zero_fraction: float | None = None) -> float:
    """The default rate 1e-3 at `step`: constant, then linear from (1 - lr_decay_fraction) of `total` to 0 at
    (1 - zero_fraction) of it (the default lr_zero_fraction if None), 0 after."""
    args = load_script(script).Args()
    zero_fraction = args.lr_zero_fraction if zero_fraction is None else zero_fraction
    start, end = (1 - args.lr_decay_fraction) * total, (1 - zero_fraction) * total
    return 1e-3 * min(1.0, max(0.0, (end - step) / (end - start)))


def test_smoke_reaches_gradient_step_and_target_update(script, workdir):
    proc = run_script(script, *SHORT, "--exploration-fraction", "0.5", cwd=workdir)
    assert proc.stdout.splitlines()[0].startswith(f"device: {DEVICE}")
    counts = summary(proc.stdout)
    # learning starts at 200 of 400 env steps: multiples of 10 before the rate reaches 0 at 300, and of 50 past 200
    assert counts == counts | {"env steps": 400, "gradient steps": gradient_steps(400, 400), "target updates": 4}
    run_dir = only_run_dir(workdir)
    assert re.fullmatch(r"CartPole-v1__" + script[:-3] + r"__1__\d+", run_dir.name)
    names = {r["metric"] for r in read_metrics(run_dir)}
    assert {"charts/episodic_return", "charts/episodic_length", "losses/td_loss", "losses/q_values"} <= names
    assert {"charts/epsilon", "charts/SPS"} <= names
    # read from the optimizer, set at every env step: 1e-3 to 80, then linear to 0 at 300, 0 after
    learning_rates = metric_by_step(run_dir, "charts/learning_rate")
    assert [learning_rates[s] for s in (100, 200)] == pytest.approx([decayed_rate(script, 400, s) for s in (100, 200)])
    assert learning_rates[300] == learning_rates[400] == 0.0 and 0 < learning_rates[200] < learning_rates[100] < 1e-3
    assert_epsilon_follows_the_schedule(run_dir, 1, 0.5 * 400)


def test_spec_example_command_runs(script, workdir):
    """SPEC.md's example: 205 steps from learning_starts 200 run, with one target update (at 204) and no gradient
    step: the rate reached 0 at 154, (1 - lr_zero_fraction) of the run; with --lr-zero-fraction 0, one at 204."""
    proc = run_script(script, "--learning-starts", "200", "--total-timesteps", "205", cwd=workdir)
    assert (summary(proc.stdout)["gradient steps"], summary(proc.stdout)["target updates"]) == (0, 1)
    proc = run_script(
        script, "--learning-starts", "200", "--total-timesteps", "205", "--lr-zero-fraction", "0", cwd=workdir
    )
    assert (summary(proc.stdout)["gradient steps"], summary(proc.stdout)["target updates"]) == (1, 1)


def test_a_run_never_writes_into_another_runs_folder(script, workdir):
    """Runs of one name started in the same second (a sweep over a flag, say) each get a folder: a name whose
    folder exists takes the next second."""
    now = int(time.time())
    taken = [workdir / "runs" / f"CartPole-v1__{script[:-3]}__1__{t}" for t in range(now, now + 60)]
    for folder in taken:
        folder.mkdir(parents=True)
    run_script(script, "--learning-starts", "200", "--total-timesteps", "205", cwd=workdir)
    (new,) = set(run_dirs(workdir)) - set(taken)
    assert int(new.name.rsplit("__", 1)[1]) >= now + 60 and (new / "metrics.csv").exists()
    assert not any(any(folder.iterdir()) for folder in taken)


@pytest.mark.parametrize("num_envs", [3, 7])
def test_num_envs_keeps_counts_in_env_steps(script, workdir, num_envs):
    flags = [*SHORT, "--num-envs", str(num_envs), "--total-timesteps", "401", "--exploration-fraction", "0.5"]
    proc = run_script(script, *flags, cwd=workdir)
    counts = summary(proc.stdout)
    steps = -(-401 // num_envs) * num_envs  # the last vector step may overshoot the budget
    assert counts["env steps"] == steps
    last = max(s for s in range(num_envs, steps + 1, num_envs) if s < 0.75 * 401)  # the last vector step with a rate
    assert counts["gradient steps"] == last // 10 - 200 // 10
    assert counts["target updates"] == steps // 50 - 200 // 50
    assert_epsilon_follows_the_schedule(only_run_dir(workdir), num_envs, 0.5 * 401)


def assert_toy_chain_rows_whole(rows: torch.Tensor, n_step: int, gamma: float) -> None:
    """ToyChain rows (obs [t, episode], reward 1 a step) go from t to t + k in one episode, k = n_step unless the
    episode ended first, with the return 1 + ... + gamma^(k-1) and discount gamma^k; terminations alone stop it."""
    import toy_envs as toy

    obs, next_obs, rewards, terminated, discounts = rows[:, 0:2], rows[:, 2:4], rows[:, 5], rows[:, 6], rows[:, 7]
    steps = next_obs[:, 0] - obs[:, 0]
    assert torch.equal(next_obs[:, 1], obs[:, 1]) and steps.min() >= 1 and steps.max() == n_step
    ends_even = (next_obs[:, 0] == toy.TERMINATE_AT) & (next_obs[:, 1] % 2 == 0)
    truncated = next_obs[:, 0] == toy.MAX_STEPS
    assert (steps[~(ends_even | truncated)] == n_step).all()  # fewer steps only where the episode ended
    assert (steps < n_step).any() == (n_step > 1)  # and there all its pending steps went in
    torch.testing.assert_close(discounts, gamma**steps)
    torch.testing.assert_close(rewards, (1 - gamma**steps) / (1 - gamma))
    assert torch.equal(terminated, ends_even.float())  # terminations, and nothing else, stop bootstrapping
    assert truncated.sum() >= 10 and not terminated[truncated].any()  # truncations kept, bootstrapping from t = 6


@pytest.mark.parametrize("num_envs, n_step", [(1, 3), (3, 3), (3, 1)])
def test_buffer_never_spans_a_reset_and_keeps_true_final_obs(script, workdir, num_envs, n_step):
    """ToyChain's obs is [t, episode], reward 1 a step: every stored transition must go from t to t + k in one
    episode, k = n_step unless the episode ended first, with the return 1 + ... + gamma^(k-1) and discount gamma^k."""
    import toy_envs as toy

    proc = run_script(
        script,
        *TOY,
        *SHORT,
        "--num-envs",
        str(num_envs),
        "--buffer-size",
        "2000",
        "--total-timesteps",
        "300",
        "--checkpoint-frequency",
        "300",
        "--checkpoint-buffer",
        "--n-step",
        str(n_step),
        cwd=workdir,
    )
    checkpoint = load_saved(only_run_dir(workdir))
    assert 300 - (n_step - 1) * num_envs <= checkpoint["buffer"]["size"] <= 300  # at most n_step - 1 pending an env
    assert_toy_chain_rows_whole(replay_rows(load_script(script), checkpoint), n_step, checkpoint["args"]["gamma"])
    # Each logged episode is one episode, ended by either cause: reward 1 a step, so its return is its length.
    run_dir = only_run_dir(workdir)
    returns, lengths = (
        [float(r["value"]) for r in read_metrics(run_dir, f"charts/episodic_{m}")] for m in ("return", "length")
    )
    assert len(returns) >= 40 and returns == lengths and set(lengths) == {toy.TERMINATE_AT, toy.MAX_STEPS}
    assert summary(proc.stdout)["episodes"] == len(returns)


def returns_and_weights(script: str, cwd: Path, *extra: str) -> tuple[list, dict]:
    """A 1,500-step run in a fresh `cwd`: its (step, episodic return) rows and its saved weights."""
    cwd.mkdir()
    run_script(script, *SHORT, "--total-timesteps", "1500", "--save-model", "--eval-episodes", "2", *extra, cwd=cwd)
    run_dir = only_run_dir(cwd)
    returns = [(r["global_step"], r["value"]) for r in read_metrics(run_dir, "charts/episodic_return")]
    return returns, load_saved(run_dir / f"{script[:-3]}.pt")


def same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def n_parameters(state: dict) -> int:
    return sum(value.numel() for value in state.values())


def test_same_seed_same_returns_and_weights(script, tmp_path):
    (returns_a, weights_a), (returns_b, weights_b) = (returns_and_weights(script, tmp_path / n) for n in "ab")
    assert len(returns_a) > 20 and returns_a == returns_b
    assert same_weights(weights_a, weights_b)
    returns_c, _ = returns_and_weights(script, tmp_path / "c", "--seed", "2")
    assert returns_c != returns_a  # the seed does reach the randomness


def test_max_grad_norm_clips_and_zero_turns_it_off(script, tmp_path):
    _, off = returns_and_weights(script, tmp_path / "off", "--max-grad-norm", "0")
    _, never_reached = returns_and_weights(script, tmp_path / "huge", "--max-grad-norm", "1e9")
    _, tight = returns_and_weights(script, tmp_path / "tight", "--max-grad-norm", "1e-3")
    assert same_weights(off, never_reached)  # 0 is no clipping at all
    assert not same_weights(off, tight)  # a norm below the gradient's does change the updates


def test_hidden_sizes_dueling_and_amsgrad_reach_the_run_and_survive_a_resume(script, tmp_path):
    checkpoints, custom_flags = {}, ["--hidden-sizes", "16", "--no-amsgrad", "--no-dueling", "--gamma", "0.9"]
    custom_flags += ["--checkpoint-buffer", "--lr-zero-fraction", "0"]  # learning to the end: past the resume
    for name, extra in (("default", []), ("custom", custom_flags)):
        (tmp_path / name).mkdir()
        run_script(script, *SHORT, "--checkpoint-frequency", "300", *extra, cwd=tmp_path / name)
        checkpoints[name] = only_run_dir(tmp_path / name) / "checkpoint.pt"
    default, custom = (load_saved(checkpoints[n]) for n in ("default", "custom"))
    widths = (4, *load_script(script).Args().hidden_sizes, 2)  # CartPole: 4 observations, 2 actions
    value_layer = widths[-2] + 1  # the dueling head's V(s), on by default
    layers = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    assert n_parameters(default["q_network"]) == layers + value_layer
    assert n_parameters(custom["q_network"]) == (4 * 16 + 16) + (16 * 2 + 2)
    for state, amsgrad in ((default, True), (custom, False)):
        assert state["optimizer"]["param_groups"][0]["amsgrad"] is amsgrad
        assert ("max_exp_avg_sq" in state["optimizer"]["state"][0]) is amsgrad

    # A resume rebuilds the checkpoint's network, whatever the defaults, and trains on from env step 300 to 400
    # (the counters are the whole run's: gradient steps from 210 to 390; at 400 the rate is 0).
    resumed = run_script(
        script, "--resume", str(checkpoints["custom"]), "--save-model", "--checkpoint-frequency", "400", cwd=tmp_path
    )
    assert "resumed" in resumed.stdout and "at env step 300" in resumed.stdout
    counts = summary(resumed.stdout)
    assert (counts["env steps"], counts["gradient steps"]) == (400, 19)
    at_400 = load_saved(checkpoints["custom"])
    assert int(at_400["optimizer"]["state"][0]["step"]) == 19  # Adam went on from its 10 steps, not from scratch
    # Only these flags come from a resumed run's command line; every other one is the checkpoint's.
    session = {"torch_deterministic", "cuda", "track", "wandb_project_name", "wandb_entity", "capture_video"}
    session |= {"save_model", "eval_episodes", "eval_epsilon", "checkpoint_frequency", "checkpoint_buffer", "resume"}
    assert {k: v for k, v in at_400["args"].items() if k not in session} == {
        k: v for k, v in custom["args"].items() if k not in session
    }
    assert custom["script"] == at_400["script"] == script
    saved = load_saved(checkpoints["custom"].parent / f"{script[:-3]}.pt")
    assert n_parameters(saved) == n_parameters(custom["q_network"])
    assert not same_weights(saved, custom["q_network"])  # trained on from env step 300
    # Refused in one line, before wandb, envs or logs start: an algorithm flag given another value than the
    # checkpoint's (the same value passes), a checkpoint from before a flag existed, or one that records a flag this
    # script does not have (a later version's, say).
    files_before = sorted(tmp_path.rglob("*"))
    without_flag = {k: v for k, v in custom["args"].items() if k != "hidden_sizes"}
    foreign = custom["args"] | {"frame_stack": 4}
    (sibling,) = set(SCRIPTS) - {script}  # its flags are this script's: only the recorded name tells them apart
    refusals = [
        (custom, ["--total-timesteps", "999", "--hidden-sizes", "16"], "999 (the checkpoint's: 400); a"),
        (custom | {"args": without_flag}, [], "--hidden-sizes"),
        (custom | {"args": foreign}, [], "--frame-stack"),
        (custom | {"script": sibling}, [], f"a checkpoint of {sibling}, not of this {script}"),
        ({k: v for k, v in custom.items() if k != "script"}, [], "did not record its name"),  # from before this check
    ]
    path = str(checkpoints["custom"])
    for state, flags, expected in refusals:
        torch.save(state, path)
        refused = run_script(script, "--resume", path, *flags, "--track", cwd=tmp_path, check=False)
        assert_refused(refused, expected)
        assert sorted(tmp_path.rglob("*")) == files_before


def test_save_model_writes_weights_and_evaluates(script, workdir):
    proc = run_script(script, *SHORT, "--save-model", "--eval-episodes", "3", cwd=workdir)
    run_dir = only_run_dir(workdir)
    state = load_saved(run_dir / f"{script[:-3]}.pt")  # loading never runs code (SPEC)
    module = load_script(script)
    module.QNetwork(4, 2, module.Args()).load_state_dict(state)
    assert len(read_metrics(run_dir, "eval/episodic_return")) == 3
    assert "eval: mean return" in proc.stdout


BAD_INPUT = [
    (["--env-id", "NoSuchEnv-v9"], "--env-id"),
    (["--env-id", "no_such_module:Env-v0"], "--env-id"),
    (["--env-id", "Pendulum-v1"], "not Discrete"),
    (["--env-id", "Blackjack-v1"], "not a flat Box"),
    (["--total-timesteps", "0"], "--total-timesteps"),
    (["--num-envs", "0"], "--num-envs"),
    (["--buffer-size", "-5"], "--buffer-size"),
    (["--batch-size", "0"], "--batch-size"),
    (["--train-frequency", "0"], "--train-frequency"),
    (["--target-network-frequency", "0"], "--target-network-frequency"),
    (["--learning-rate", "0"], "--learning-rate"),
    (["--lr-decay-fraction", "1.5"], "--lr-decay-fraction"),
    (["--lr-decay-fraction", "-0.1"], "--lr-decay-fraction"),
    (["--lr-zero-fraction", "1.5"], "--lr-zero-fraction"),
    (["--lr-zero-fraction", "-0.1"], "--lr-zero-fraction"),
    (["--gamma", "1"], "--gamma"),  # the clamp's bounds divide by 1 - gamma (--no-clamp-values: allowed)
    (["--max-grad-norm", "-1"], "--max-grad-norm"),
    (["--hidden-sizes", "64", "0"], "--hidden-sizes"),
    (["--hidden-sizes"], "--hidden-sizes"),
    (["--batch-size", "64", "--buffer-size", "32"], "--batch-size"),
    (["--num-envs", "64", "--buffer-size", "32", "--batch-size", "32"], "--num-envs"),
    (["--env-id", "toy_envs:ToyShiftedActions-v0"], "Discrete(n) from 0"),
    (["--learning-starts", "500", "--total-timesteps", "500"], "--learning-starts"),
    (["--n-step", "0"], "--n-step"),
    (["--learning-starts", "7", "--num-envs", "4"], "--learning-starts"),  # 3-step rows begin after 8 env steps
    (["--gamma", "1.5"], "--gamma"),
    (["--tau", "0"], "--tau"),
    (["--tau", "1.1"], "--tau"),
    (["--start-e", "1.2"], "--start-e"),
    (["--end-e", "-0.1"], "--end-e"),
    (["--start-e", "0.1", "--end-e", "0.5"], "--end-e"),
    (["--exploration-fraction", "0"], "--exploration-fraction"),
    (["--exploration-fraction", "1.5"], "--exploration-fraction"),
    (["--buffer-size", str(10**13)], "bytes"),
    (["--resume", "no/such/checkpoint.pt"], "--resume"),
    (["--seed", "-1"], "--seed"),
    (["--gamma", "-0.1"], "--gamma"),
    (["--start-e", "-0.1"], "--start-e"),
    (["--eval-epsilon", "-0.1"], "--eval-epsilon"),
    (["--seed", str(2**32)], "--seed"),
    (["--env-id", "a:b:c"], "--env-id"),
    (["--env-id", "ALE/Breakout-v5"], "for Atari use dqn_atari.py"),
    (["--eval-episodes", "0"], "--eval-episodes"),
    (["--eval-epsilon", "1.5"], "--eval-epsilon"),
    (["--checkpoint-frequency", "-1"], "--checkpoint-frequency"),
    (["--learning-starts", "-1"], "--learning-starts"),
    (["--exp-name", "sweep/a"], "--exp-name"),
]


@pytest.mark.parametrize("flags,expected", BAD_INPUT, ids=[" ".join(f) for f, _ in BAD_INPUT])
def test_bad_input_one_line_exit_2_nothing_created(script, workdir, flags, expected):
    proc = run_script(script, *flags, "--track", cwd=workdir, check=False)
    assert_refused(proc, expected)
    assert list(workdir.iterdir()) == []  # no run folder, no wandb folder


def test_without_proc_meminfo_the_memory_check_is_skipped_not_a_crash(script, monkeypatch, no_proc_meminfo):
    """macOS and Windows have no /proc/meminfo: the replay's size goes unchecked there (on Linux: refused, above)."""
    monkeypatch.setattr(sys, "argv", [script, "--buffer-size", str(10**13)])
    args, checkpoint = load_script(script).parse_args()
    assert args.buffer_size == 10**13 and checkpoint is None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_then_resume_continues(script, tmp_path, sig):
    """ToyChain sends the signal to its own process at its 250th step: a deterministic interruption."""
    flags = [*TOY, *SHORT, "--total-timesteps", "600", "--checkpoint-buffer"]
    interrupted = run_stopped_by_signal(script, *flags, at=250, sig=sig, cwd=tmp_path)
    assert interrupted.returncode == 128 + sig, interrupted.stdout + interrupted.stderr
    run_dir = only_run_dir(tmp_path)
    checkpoint = load_saved(run_dir / "checkpoint.pt")
    assert checkpoint["counters"]["global_step"] == 250 and checkpoint["buffer"]["size"] == 250
    rows_before = read_metrics(run_dir)
    assert rows_before and max(int(r["global_step"]) for r in rows_before) <= 250

    proc = run_script(script, "--resume", str(run_dir / "checkpoint.pt"), "--checkpoint-frequency", "600", cwd=tmp_path)
    assert "resumed" in proc.stdout and run_dirs(tmp_path) == [run_dir]
    counts = summary(proc.stdout)
    assert counts["env steps"] == 600
    assert counts["gradient steps"] == gradient_steps(600, 600)  # the buffer came back: training went straight on
    rows_after = read_metrics(run_dir)
    assert rows_after[: len(rows_before)] == rows_before and len(rows_after) > len(rows_before)
    # The run's clock goes on across the resume: wall_time never falls, and a checkpoint's elapsed time covers the
    # rows logged before it, in this session and the ones before (the resumed session wrote one at step 600).
    times = [float(r["wall_time"]) for r in rows_after]
    at_600 = load_saved(run_dir / "checkpoint.pt")["counters"]
    assert times == sorted(times) and at_600["global_step"] == 600
    before, elapsed = len(rows_before), checkpoint["counters"]["elapsed"]  # wall_time is rounded to 1 ms
    assert times[before - 1] - 1e-3 <= elapsed <= times[before] + 1e-3 and times[-1] <= at_600["elapsed"] + 1e-3
    # the rate's schedule follows the env step across the resume
    learning_rates = metric_by_step(run_dir, "charts/learning_rate")
    assert [learning_rates[s] for s in (400, 500, 600)] == pytest.approx(
        [decayed_rate(script, 600, s) for s in (400, 500, 600)]
    )


def test_a_resume_inside_the_decay_window_goes_on_at_the_schedules_rate(script, tmp_path):
    """A checkpoint taken while the rate decays resumes at the schedule's rate, not at one decayed twice: each optimizer
    group's first rate travels in the checkpoint."""
    flags = [*TOY, *SHORT, "--total-timesteps", "700", "--checkpoint-buffer", "--lr-zero-fraction", "0"]
    run_stopped_by_signal(script, *flags, at=550, cwd=tmp_path)
    path = only_run_dir(tmp_path) / "checkpoint.pt"
    assert load_saved(path)["counters"]["global_step"] == 550  # the decay runs from 140 to 0 at 700
    run_script(script, "--resume", str(path), cwd=tmp_path)
    rates = [metric_by_step(path.parent, "charts/learning_rate")[s] for s in (500, 600, 700)]
    assert rates == pytest.approx([decayed_rate(script, 700, s, zero_fraction=0) for s in (500, 600, 700)])
    assert rates[1] > 0  # inside the decay, past the resume


@pytest.mark.parametrize("step,during", [(400, "the last training step"), (450, "the evaluation")])
def test_signal_after_the_loop_still_stops_the_run(script, workdir, step, during):
    """A signal in the training loop's last step, or in the evaluation after it, still ends the run non-zero.

    Training takes 400 env steps; the evaluation env, counting its own steps, sends the signal at step 450.
    """
    flags = [*TOY, *SHORT, "--save-model", "--eval-episodes", "1000"]
    proc = run_stopped_by_signal(script, *flags, at=step, sig=signal.SIGINT, cwd=workdir)
    assert proc.returncode == 128 + signal.SIGINT, proc.stdout + proc.stderr
    run_dir = only_run_dir(workdir)
    checkpointed = during == "the last training step"  # the evaluation comes after the model is saved
    assert (run_dir / "checkpoint.pt").exists() == checkpointed
    assert (run_dir / f"{script[:-3]}.pt").exists() != checkpointed
    assert read_metrics(run_dir, "eval/episodic_return") == [] and "Traceback" not in proc.stderr


def test_resume_goes_on_as_one_run_and_each_gradient_step_is_the_reference(script, tmp_path):
    """Stopped at env step 150, before learning starts, then resumed to 320, against one run to 320: the random
    streams and Adam's step count go on as in one run; and the 12 gradient steps and 2 soft target updates equal a
    reference computed here from the checkpoint at 150, the stored transitions and the helpers: a Huber loss on the
    taken actions, fresh gradients each step, clipping, then Adam."""
    module = load_script(script)
    flags = [*TOY, *SHORT, "--total-timesteps", "600", "--checkpoint-buffer", "--no-cuda"]  # the CPU's arithmetic
    flags += ["--n-step", "1"]  # one row per env step: the buffer at env step s is its first s rows

    def run_until(env_steps: int, cwd: Path, *extra: str) -> dict:
        run_stopped_by_signal(script, *extra, at=env_steps, cwd=cwd)
        return load_saved(only_run_dir(cwd))

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = run_until(320, tmp_path / "one", *flags)
    at_150 = run_until(150, tmp_path / "two", *flags)
    path = str(only_run_dir(tmp_path / "two") / "checkpoint.pt")
    # The resumed process's env counts its steps anew: its 170th is the run's 320th.
    resumed = run_until(320 - 150, tmp_path / "two", "--resume", path, "--checkpoint-buffer", "--no-cuda")

    assert (at_150["counters"]["global_step"], at_150["counters"]["gradient_steps"]) == (150, 0)
    assert same_weights(at_150["q_network"], at_150["target_network"])
    assert at_150["sample_rng"] == np.random.default_rng([1, 1]).bit_generator.state  # seeded, not drawn yet
    for run in (one, resumed):
        assert (run["counters"]["global_step"], run["counters"]["gradient_steps"]) == (320, 12)
    assert resumed["explore_rng"] == one["explore_rng"]  # one draw per env step, whatever the episodes
    assert resumed["sample_rng"] == one["sample_rng"]
    assert int(resumed["optimizer"]["state"][0]["step"]) == 12

    args = module.Args(**at_150["args"])
    q_network, target_network = (module.QNetwork(2, 2, args) for _ in range(2))
    q_network.load_state_dict(at_150["q_network"])
    target_network.load_state_dict(at_150["target_network"])
    optimizer = torch.optim.Adam(q_network.parameters(), lr=args.learning_rate, amsgrad=args.amsgrad, fused=True)
    generator = np.random.default_rng([args.seed, 1])
    first_losses = None  # the first gradient step's loss and mean Q of the taken actions, which the run logs
    for step in range(args.learning_starts + 1, 321):
        if step % args.train_frequency == 0:
            rb = module.ReplayBuffer(args.buffer_size, 2, args.num_envs, args.n_step, args.gamma)
            rb.load_state_dict({"pos": step, "size": step, "data": resumed["buffer"]["data"][:step]})
            batch = rb.sample(args.batch_size, generator, torch.device("cpu"))
            with torch.no_grad():
                next_values = module.next_state_value(q_network, target_network, batch["next_obs"])
                next_values = next_values.clamp(0.0, 1.0 / (1 - args.gamma))  # the clamp: ToyChain pays 1 a step
                targets = module.td_target(batch["rewards"], batch["terminated"], next_values, batch["discounts"])
            q_taken = q_network(batch["obs"]).gather(1, batch["actions"].unsqueeze(1)).squeeze(1)
            loss = F.smooth_l1_loss(q_taken, targets)  # the scripts' Huber loss: a loss edit there is one here too
            first_losses = first_losses or {"losses/td_loss": loss.item(), "losses/q_values": q_taken.mean().item()}
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q_network.parameters(), args.max_grad_norm)
            for group in optimizer.param_groups:
                scale = module.lr_scale_at(args.lr_decay_fraction, args.lr_zero_fraction, args.total_timesteps, step)
                group["lr"] = scale * args.learning_rate
            optimizer.step()
        if step % args.target_network_frequency == 0:
            module.soft_update(target_network, q_network, args.tau)
    differ = "the resumed weights differ from the steps recomputed here (by hand: edit a loss or optimizer here too)"
    for network, saved in ((q_network, resumed["q_network"]), (target_network, resumed["target_network"])):
        for name, value in network.state_dict().items():
            torch.testing.assert_close(value, saved[name], rtol=0, atol=1e-6, msg=lambda m: f"{differ}\n{m}")
    rows = read_metrics(only_run_dir(tmp_path / "two"))
    logged = {r["metric"]: float(r["value"]) for r in rows if r["metric"].startswith("losses/")}  # at env step 210
    assert logged == pytest.approx(first_losses, abs=1e-6)


def test_a_resumed_run_plays_new_episodes(script, workdir, monkeypatch):
    """A resumed run restarts its episodes seeded by the env step it resumes at, not by --seed alone: its first
    episode does not replay the run's first."""
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    starts, reset = [], CartPoleEnv.reset

    def recording_reset(env, *, seed=None, options=None):  # the signature gymnasium's env checker asks for
        starts.append((out := reset(env, seed=seed, options=options))[0].copy())
        return out

    monkeypatch.setattr(CartPoleEnv, "reset", recording_reset)
    run_script(script, *SHORT, "--checkpoint-frequency", "300", cwd=workdir)  # CartPole-v1, 400 steps
    episodes = len(starts)
    run_script(script, "--resume", str(only_run_dir(workdir) / "checkpoint.pt"), cwd=workdir)
    assert len(starts) > episodes and not np.array_equal(starts[episodes], starts[0])


def test_n_step_rows_stay_whole_across_a_resume(script, tmp_path):
    """Stopped at env step 153, two steps of an episode pending, and resumed with the buffer for 150 more steps (whole
    episodes): the pending steps are dropped, not joined to the resumed run's new episodes; every row stays whole."""
    flags = [*TOY, *SHORT, "--total-timesteps", "600", "--checkpoint-buffer", "--n-step", "3"]
    run_stopped_by_signal(script, *flags, at=153, cwd=tmp_path)
    checkpoint = only_run_dir(tmp_path) / "checkpoint.pt"
    before = load_saved(checkpoint)
    resume = ["--resume", str(checkpoint), "--checkpoint-buffer"]
    run_stopped_by_signal(script, *resume, at=150, cwd=tmp_path)
    after = load_saved(checkpoint)
    assert (before["buffer"]["size"], after["buffer"]["size"]) == (153 - 2, 153 - 2 + 150)  # ToyChain: 10-step pairs
    assert_toy_chain_rows_whole(replay_rows(load_script(script), after), n_step=3, gamma=after["args"]["gamma"])


def test_a_flag_added_at_the_end_of_args_is_kept_by_a_resume(script, tmp_path):
    """A flag a researcher appends to `Args` is an algorithm flag: a resume goes on with the checkpoint's value and
    refuses another (the flags a resume takes from its command line are the run's, from after seed to resume)."""
    lines = (ROOT / script).read_text().splitlines(keepends=True)
    lines.insert(args_class(script).end_lineno, '    loss_scale: float = 1.0\n    """a flag a researcher adds"""\n')
    (edited := tmp_path / script).write_text("".join(lines))
    run_stopped_by_signal(str(edited), *TOY, *SHORT, "--loss-scale", "2", at=300, cwd=tmp_path)
    checkpoint = only_run_dir(tmp_path) / "checkpoint.pt"
    resume = [str(edited), "--resume", str(checkpoint)]
    assert_refused(run_script(*resume, "--loss-scale", "3", cwd=tmp_path, check=False), "3.0 (the checkpoint's: 2.0)")
    resumed = run_script(*resume, "--checkpoint-frequency", "400", cwd=tmp_path)  # without the flag: the run's value
    assert summary(resumed.stdout)["env steps"] == 400 and load_saved(checkpoint)["args"]["loss_scale"] == 2.0


def test_resume_is_deterministic_and_refills_without_buffer(script, tmp_path):
    flags = [
        *TOY,
        *SHORT,
        "--total-timesteps",
        "600",
        "--lr-zero-fraction",
        "0",
    ]  # learning to the end: after the refill
    run_stopped_by_signal(script, *flags, at=300, cwd=tmp_path)
    checkpoint = only_run_dir(tmp_path) / "checkpoint.pt"
    assert "buffer" not in load_saved(checkpoint)
    results = []
    for name in ("a", "b"):  # a resumed run writes into the checkpoint's folder: one copy each
        (tmp_path / name).mkdir()
        shutil.copy(checkpoint, tmp_path / name / "checkpoint.pt")
        proc = run_script(
            script,
            "--resume",
            str(tmp_path / name / "checkpoint.pt"),
            "--save-model",
            "--eval-episodes",
            "1",
            cwd=tmp_path,
        )
        counts = summary(proc.stdout)
        # the empty buffer is refilled for learning_starts (200) env steps before training goes on
        assert counts["gradient steps"] == 10 + 9  # 210-300, then 510-590 (at 600 the rate is 0)
        assert "refilling; learning from env step 500" in proc.stdout  # said: a refill past the end trains none
        results.append((counts, load_saved(tmp_path / name / f"{script[:-3]}.pt")))
    (counts_a, weights_a), (counts_b, weights_b) = results
    assert counts_a == counts_b and same_weights(weights_a, weights_b)


def test_non_finite_loss_stops_with_the_step(script, workdir):
    flags = [*TOY, *SHORT, "--batch-size", "256"]  # a batch of most of the buffer: the NaN reward is drawn at once
    proc = run_script(script, *flags, cwd=workdir, env=script_env(TOY_NAN_AT="230"), check=False)
    assert proc.returncode == 1
    assert "non-finite TD loss" in proc.stderr and "env step" in proc.stderr


def test_progress_lines_are_plain_when_not_a_terminal(script, workdir):
    out = run_script(script, *SHORT, cwd=workdir).stdout
    assert "\r" not in out
    lines = [line for line in out.splitlines() if line.startswith("step ")]
    assert lines and all("SPS" in line and "eps" in line and "ETA" in line for line in lines)
    assert lines[-1].startswith("step        400/400 (100%)") and "ETA 0d 00:00:00" in lines[-1]


def test_tensorboard_holds_what_metrics_csv_holds(script, workdir):
    """`tensorboard --logdir runs` shows the run: every metric of metrics.csv, at the same steps, same values."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_script(script, *SHORT, "--save-model", "--eval-episodes", "2", cwd=workdir)
    run_dir = only_run_dir(workdir)
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    rows = read_metrics(run_dir)
    assert (
        set(events.Tags()["scalars"])
        == {r["metric"] for r in rows}
        >= {"charts/episodic_return", "eval/episodic_return"}
    )
    for tag in events.Tags()["scalars"]:
        logged = [(e.step, e.value) for e in events.Scalars(tag)]
        expected = [(int(r["global_step"]), float(r["value"])) for r in rows if r["metric"] == tag]
        assert [step for step, _ in logged] == [step for step, _ in expected], tag
        assert [value for _, value in logged] == pytest.approx([value for _, value in expected], rel=1e-6), tag


@pytest.mark.parametrize("dueling", [False, True])
@pytest.mark.parametrize("edit", EDITS)
def test_edited_networks_act_and_learn_with_their_current_weights(script, edit, dueling, workdir, monkeypatch):
    """A contextual bandit (four contexts, one paying action each): with a researcher's edit of the network (weight
    norm, LayerNorm, a head of their own), with or without the dueling head, the greedy policy learns to pay every
    time. A policy acting with a copy of the initial weights would pay about a quarter of the time."""
    module = load_script(script)
    network = module.QNetwork
    monkeypatch.setattr(module, "QNetwork", lambda *args, **kwargs: EDITS[edit](network(*args, **kwargs)))
    monkeypatch.chdir(workdir)
    flags = dict(env_id="toy_envs:ToyBandit-v0", total_timesteps=1500, learning_starts=200, train_frequency=1)
    train_in_process(
        module, **flags, end_e=0.0, exploration_fraction=0.3, batch_size=32, hidden_sizes=(32,), dueling=dueling
    )
    returns = [float(r["value"]) for r in read_metrics(only_run_dir(workdir), "charts/episodic_return")]
    assert len(returns) == 1500 and returns[-500:] == [1.0] * 500  # greedy (epsilon 0) from env step 450


class DecayingAdam(torch.optim.Adam):
    """A researcher's own rate schedule, as a scheduler's step() would apply it: 1% lower after each Adam step."""

    def step(self, closure=None):
        super().step(closure)
        for group in self.param_groups:
            group["lr"] *= 0.99


def test_a_researchers_learning_rate_stands_without_the_decay(script, workdir, monkeypatch):
    """With --lr-decay-fraction 0 the loop leaves the optimizer's rate alone: one that a scheduler-like edit lowers
    after each Adam step is the rate used and logged (the loop used to set the base rate before every step)."""
    module = load_script(script)
    monkeypatch.setattr(module.torch.optim, "Adam", DecayingAdam)
    monkeypatch.chdir(workdir)
    run = train_in_process(module, **TOY_CHAIN_400, lr_decay_fraction=0.0)
    assert run.counters["gradient_steps"] == 50
    logged = read_metrics(only_run_dir(workdir), "charts/learning_rate")[-1]
    assert float(logged["value"]) == pytest.approx(module.Args().learning_rate * 0.99**50, rel=1e-9)


def test_the_decay_refuses_a_rate_set_elsewhere(script, workdir, monkeypatch):
    """With the decay on (the default) a rate changed outside it would be overwritten before the next Adam step, and
    charts/learning_rate would show a rate never used: the run stops at that step instead, naming the flag."""
    module = load_script(script)
    monkeypatch.setattr(module.torch.optim, "Adam", DecayingAdam)
    monkeypatch.chdir(workdir)
    with pytest.raises(AssertionError, match="--lr-decay-fraction 0"):
        train_in_process(module, **TOY_CHAIN_400)


def test_the_rate_decay_scales_each_param_groups_own_rate(script, workdir, monkeypatch):
    """An optimizer edited into two parameter groups, the second at a tenth of the rate: the decay scales each group's
    own first rate (it used to set every group to the base rate), so the ratio holds to the end."""
    module, rates = load_script(script), []

    class TwoGroupAdam(torch.optim.Adam):
        def __init__(self, params, lr, **kwargs):
            params = list(params)
            super().__init__([{"params": params[:2]}, {"params": params[2:], "lr": lr / 10}], lr=lr, **kwargs)

        def step(self, closure=None):
            rates.append([group["lr"] for group in self.param_groups])
            return super().step(closure)

    monkeypatch.setattr(module.torch.optim, "Adam", TwoGroupAdam)
    monkeypatch.chdir(workdir)
    train_in_process(module, **TOY_CHAIN_400, learning_rate=1e-3, lr_decay_fraction=0.5)  # decay from env step 200
    steps = range(204, 300, 4)  # a gradient step every 4 env steps from learning_starts; none from 300, rate 0 there
    expected = [[1e-3 * (300 - t) / 100, 1e-4 * (300 - t) / 100] for t in steps]
    assert len(rates) == 24 and np.allclose(rates, expected, rtol=1e-9, atol=0)


def test_logged_returns_are_the_envs_rewards_whatever_the_loop_stores(script, workdir, monkeypatch):
    """A reward edit on the way to the replay (here: the rewards zeroed in place as they are stored) leaves
    charts/episodic_return as the env's: ToyChain pays 1 a step, 4 or 6 steps an episode."""
    module = load_script(script)
    monkeypatch.setattr(module.ReplayBuffer, "add", spy(module.ReplayBuffer.add, lambda a: a["rewards"].fill(0)))
    monkeypatch.chdir(workdir)
    train_in_process(module, **TOY_CHAIN_400)
    returns = {float(r["value"]) for r in read_metrics(only_run_dir(workdir), "charts/episodic_return")}
    assert returns == {4.0, 6.0}


def test_each_sampled_row_bootstraps_with_its_own_discount(script, workdir, monkeypatch):
    """With 3-step rows, the loop hands td_target each row's stored discount: gamma^3, and gamma or gamma^2 for the
    rows an episode's end stored with fewer steps (ToyChain's episodes end every 4 or 6 steps)."""
    module, seen = load_script(script), set()
    monkeypatch.setattr(module, "td_target", spy(module.td_target, lambda a: seen.update(a["discounts"].tolist())))
    monkeypatch.chdir(workdir)
    run = train_in_process(module, **TOY_CHAIN_400, n_step=3)
    assert run.counters["gradient_steps"] == 24
    assert seen == {np.float32(module.Args().gamma ** k).item() for k in (1, 2, 3)}


@pytest.mark.parametrize("clamp", [True, False])
@pytest.mark.parametrize("value", [-1e6, 1e6])
@pytest.mark.parametrize("env_id,reward", [("toy_envs:ToyChain-v0", 1.0), ("MountainCar-v0", -1.0)])
def test_the_clamp_keeps_bootstrapped_values_within_what_a_policy_can_earn(
    script, workdir, monkeypatch, clamp, value, env_id, reward
):
    """ToyChain pays 1 a step, so no state is worth less than 0 or more than 1 / (1 - gamma); MountainCar-v0 pays -1,
    so none is worth less than -1 / (1 - gamma) or more than 0. With --clamp-values a network that says -1e6 or 1e6 of
    every next state bootstraps from those bounds; without it, from what it says. The rewards seen go to checkpoints."""
    module, seen = load_script(script), set()
    monkeypatch.setattr(module, "next_state_value", lambda q_network, target_network, next_obs: torch.full((8,), value))
    monkeypatch.setattr(module, "td_target", spy(module.td_target, lambda a: seen.update(a["next_values"].tolist())))
    monkeypatch.chdir(workdir)
    run = train_in_process(module, **TOY_CHAIN_400 | dict(env_id=env_id), batch_size=8, clamp_values=clamp)
    assert run.counters["reward_bounds"] == [min(reward, 0.0), max(reward, 0.0)]
    bounded = min(
        max(value, min(reward, 0.0) / (1 - module.Args().gamma)), max(reward, 0.0) / (1 - module.Args().gamma)
    )
    assert len(seen) == 1 and seen.pop() == pytest.approx(bounded if clamp else value)


@pytest.mark.parametrize("name", [*SCRIPTS, "dqn_atari.py"])
def test_targets_and_evaluation_use_networks_in_eval_mode(name, workdir, monkeypatch):
    """TD targets and --save-model's evaluation see the networks in eval mode, as an edit that adds dropout or
    BatchNorm needs (no dropout, running statistics)."""
    module, seen = load_script(name), {"target": set(), "greedy": []}
    targets = spy(module.next_state_value, lambda a: seen["target"].add(a["target_network"].training))
    greedy = spy(module.greedy_actions, lambda a: seen["greedy"].append(a["q_network"].training))
    monkeypatch.setattr(module, "next_state_value", targets)
    monkeypatch.setattr(module, "greedy_actions", greedy)
    monkeypatch.chdir(workdir)
    env = "toy_envs:ToyBreakout-v0" if name == "dqn_atari.py" else "toy_envs:ToyChain-v0"
    flags = dict(total_timesteps=300, learning_starts=200, buffer_size=1000, batch_size=8, exploration_fraction=0.1)
    train_in_process(module, env_id=env, save_model=True, eval_episodes=1, **flags)
    assert seen["target"] == {False}
    assert seen["greedy"][-1] is False  # evaluation's last action


@pytest.mark.parametrize("name", [*SCRIPTS, "dqn_atari.py"])
def test_a_checkpoint_saves_the_objects_the_loop_holds_when_it_is_written(name, workdir, monkeypatch):
    """`run.restore` keeps a function of what checkpoints hold and calls it at each save: a network that the loop
    rebinds after the restore (a reset: a new network and optimizer) is the one saved, not the first."""
    module, held = load_script(name), {"q_network": torch.nn.Linear(2, 2)}
    monkeypatch.chdir(workdir)
    run = module.Run(module.Args(), None)
    run.restore(lambda: dict(held))
    held["q_network"] = torch.nn.Linear(2, 2)
    saved = torch.load(run.save_checkpoint(), weights_only=True)
    assert torch.equal(saved["q_network"]["weight"], held["q_network"].weight) and run.finish() == 0


def test_metrics_csv_header_and_wall_time(script, workdir):
    run_script(script, *SHORT, cwd=workdir)
    run_dir = only_run_dir(workdir)
    assert (run_dir / "metrics.csv").read_text().splitlines()[0] == "global_step,wall_time,metric,value"
    rows = read_metrics(run_dir)
    times = [float(r["wall_time"]) for r in rows]
    assert times == sorted(times) and 0 <= times[0] < 60


def test_wandb_offline_tracking(script, workdir):
    env = script_env(WANDB_MODE="offline", WANDB_SILENT="true")
    run_script(script, *SHORT, "--track", cwd=workdir, env=env, subprocess_=True)  # wandb's threads: a process
    offline = list((workdir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and any(offline[0].rglob("*.wandb"))


def test_capture_video_writes_mp4_and_a_resume_keeps_them(script, workdir):
    run_script(script, *SHORT, "--capture-video", "--checkpoint-frequency", "300", cwd=workdir)
    videos = {v: v.read_bytes() for v in (workdir / "videos").rglob("*.mp4")}
    assert videos and all(len(data) > 1000 for data in videos.values())
    # A resumed run (here from env step 300) numbers its episodes from 0 again, in a folder of its own.
    run_dir = only_run_dir(workdir)
    run_script(script, "--resume", str(run_dir / "checkpoint.pt"), "--capture-video", cwd=workdir)
    resumed = set((workdir / "videos" / run_dir.name / "resumed_at_300").glob("*.mp4"))
    assert resumed and {v: v.read_bytes() for v in videos} == videos


def test_custom_env_via_module_syntax(script, workdir):
    proc = run_script(script, *TOY, *SHORT, cwd=workdir)
    counts = summary(proc.stdout)
    assert (counts["gradient steps"], counts["target updates"]) == (gradient_steps(400, 400), 4)
    assert only_run_dir(workdir).name.startswith("toy_envs:ToyChain-v0__")


class RunsCode:
    """Pickled, it runs `touch` when unpickled: what `weights_only=True` must never do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("script_name", [*SCRIPTS, "dqn_atari.py"])
@pytest.mark.parametrize("content", ["text", "table", "pickle", "code"])
def test_resume_refuses_a_file_that_is_not_a_checkpoint(script_name, content, tmp_path):
    """Text files, a plain pickle, a pickle that runs code: one line, exit 2, nothing run or created. (torch.load
    fails on the two texts differently: the table's first bytes read as pickle opcodes, and raise an IndexError.)"""
    marker, path, workdir = tmp_path / "code_ran", tmp_path / "checkpoint.pt", tmp_path / "work"
    workdir.mkdir()
    if content in ("text", "table"):
        path.write_text("not a checkpoint" if content == "text" else "Name,Value\n1,2\n")
    else:
        path.write_bytes(pickle.dumps(RunsCode(marker) if content == "code" else {"args": {}}))
    proc = run_script(script_name, "--resume", str(path), "--track", cwd=workdir, check=False)
    assert_refused(proc, "--resume")
    assert not marker.exists() and list(workdir.iterdir()) == []


def test_readme_plot_code_draws_a_real_run(workdir):
    """The README's "Plot a run" code, pointed at a run's folder, draws it with only the README's install."""
    run_script("dqn.py", *SHORT, cwd=workdir)
    fence, placeholder = "`" * 3, "runs/CartPole-v1__dqn__1__1700000000"
    code = (ROOT / "README.md").read_text().split(f"Plot a run:\n\n{fence}python\n", 1)[1].split(fence, 1)[0]
    assert placeholder in code
    code = "import matplotlib\nmatplotlib.use('Agg')\n" + code.replace(placeholder, str(only_run_dir(workdir)))
    code += "\nassert len(plt.gca().lines[0].get_xdata()) > 1  # the returns were found and drawn\n"
    subprocess.run([sys.executable, "-c", code], cwd=workdir, check=True)
    assert (workdir / "return.png").stat().st_size > 1000
