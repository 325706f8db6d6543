"""Shared helpers: run a script as a user would, in this process or a subprocess, and read what it wrote."""

import builtins
import contextlib
import csv
import importlib.util
import inspect
import io
import os
import re
import runpy
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
# A short run that reaches gradient steps and target updates: learning starts at 200, train every 10, target every 50.
SHORT = ["--total-timesteps", "400", "--learning-starts", "200", "--train-frequency", "10"]
SHORT += ["--target-network-frequency", "50", "--buffer-size", "1000", "--batch-size", "32"]


def gradient_steps(last_step: int, total: int, start: int = 200, every: int = 10) -> int:
    """A run's gradient steps by hand: one per multiple of `every` in (start, last_step], none once the rate is 0, from
    (1 - lr_zero_fraction) * total (the default 0.25: the last quarter of the run plays the network it learned)."""
    return sum(1 for t in range(start + every, last_step + 1, every) if t < 0.75 * total)


# `--cuda` is on by default: the scripts run on the GPU where there is one, and say so on their first line.
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
torch.set_num_threads(1)  # as the subprocesses' OMP_NUM_THREADS=1: two test workers share two cores


def load_script(name: str):
    """Import a top-level script as a module (its run is under `if __name__ == "__main__"`)."""
    spec = importlib.util.spec_from_file_location(Path(name).stem, ROOT / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_stopped_by_signal(script: str, *flags, at: int, cwd: Path, sig=signal.SIGTERM) -> subprocess.CompletedProcess:
    """Run a script on a toy env (in `flags`) that sends `sig` to its own process at its `at`-th step: a stop at a
    known step. The exit code is the test's to check."""
    return run_script(script, *flags, cwd=cwd, env=script_env(TOY_SIGNAL_AT=f"{at}:{int(sig)}"), check=False)


def spy(fn, record):
    """fn, calling record(arguments by name) first: a test sees what the loop passes, however it passes it."""
    signature = inspect.signature(fn)
    return lambda *args, **kwargs: record(signature.bind(*args, **kwargs).arguments) or fn(*args, **kwargs)


def train_in_process(module, **flags):
    """Train a loaded script in this process (run folder under the cwd) with Args(**flags); returns its finished Run,
    so a test can patch the module's pieces first. The run must end with exit code 0."""
    args = module.Args(**flags)
    module.train(args, run := module.Run(args, None))
    assert run.finish() == 0
    return run


def script_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "TOY_"))}
    return env | {"PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"} | extra


def run_script(script: str, *flags, cwd: Path, env=None, check=True, subprocess_=False) -> subprocess.CompletedProcess:
    """`python SCRIPT FLAGS` in `cwd`: its exit code, stdout and stderr.

    By default the script runs in this process (runpy, as `__main__`), which spares a Python start and a torch
    import per run; `subprocess_=True` runs it as its own process. Environment, argv, working directory and
    signal handlers are put back afterwards.
    """
    if subprocess_:
        command = [sys.executable, str(ROOT / script), *flags]
        proc = subprocess.run(command, cwd=cwd, env=env or script_env(), capture_output=True, text=True, timeout=900)
    else:
        saved = (
            dict(os.environ),
            sys.argv,
            os.getcwd(),
            {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)},
        )
        stdout, stderr, code = io.StringIO(), io.StringIO(), 0
        os.environ.clear()
        os.environ.update(env or script_env())
        sys.argv = [str(ROOT / script), *map(str, flags)]
        os.chdir(cwd)
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                runpy.run_path(str(ROOT / script), run_name="__main__")
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        finally:
            os.environ.clear()
            os.environ.update(saved[0])
            sys.argv = saved[1]
            os.chdir(saved[2])
            for signum, handler in saved[3].items():
                signal.signal(signum, handler)
        proc = subprocess.CompletedProcess(sys.argv, code, stdout.getvalue(), stderr.getvalue())
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


def run_dirs(cwd: Path) -> list[Path]:
    return sorted((cwd / "runs").glob("*")) if (cwd / "runs").exists() else []


def only_run_dir(cwd: Path) -> Path:
    dirs = run_dirs(cwd)
    assert len(dirs) == 1, dirs
    return dirs[0]


def read_metrics(run_dir: Path, metric: str | None = None) -> list[dict]:
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if metric is None or r["metric"] == metric]


def metric_by_step(run_dir: Path, metric: str) -> dict[int, float]:
    return {int(r["global_step"]): float(r["value"]) for r in read_metrics(run_dir, metric)}


SCRIPTS = ["dqn.py", "double_dqn.py"]  # the CartPole scripts; dqn_atari.py has tests of its own


def assert_refused(proc: subprocess.CompletedProcess, expected: str) -> None:
    """Bad input's answer: exit code 2 and one line on stderr, `error: ...` naming `expected`, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (
        proc.stderr
    )


def load_saved(path: Path) -> dict:
    """A checkpoint or saved weights, loaded as the scripts load them (weights_only: no code runs); a run's folder
    stands for its checkpoint.pt."""
    return torch.load(path / "checkpoint.pt" if path.is_dir() else path, weights_only=True)


def stored_rows(rb) -> set[tuple]:
    """What a ReplayBuffer holds, read through sample() alone (so its storage layout is free): 4,096 seeded draws as
    rows (obs..., next_obs..., action, reward, terminated, discount); a set, so the tests' rows are all distinct."""
    batch = rb.sample(4096, np.random.default_rng(0), torch.device("cpu"))
    scalars = [batch[k].double()[:, None] for k in ("actions", "rewards", "terminated", "discounts")]
    return {tuple(row) for row in torch.cat([batch["obs"].double(), batch["next_obs"].double(), *scalars], 1).tolist()}


def replay_rows(module, checkpoint: dict, obs_dim: int = 2) -> torch.Tensor:
    """The rows of a checkpoint's replay (a ToyChain run's: obs of 2), loaded into the script's ReplayBuffer and
    read as stored_rows, sorted: one row per stored transition, whatever the storage's layout."""
    args = module.Args(**checkpoint["args"])
    rb = module.ReplayBuffer(args.buffer_size, obs_dim, args.num_envs, args.n_step, args.gamma)
    rb.load_state_dict(checkpoint["buffer"])
    return torch.tensor(sorted(stored_rows(rb)))


def summary(stdout: str) -> dict[str, int]:
    """Counters from the script's closing line `done: N env steps, N gradient steps, N target updates, N episodes`."""
    pattern = r"done: ([\d,]+) env steps, ([\d,]+) gradient steps, ([\d,]+) target updates, ([\d,]+) episodes"
    match = re.search(pattern, stdout)
    assert match, stdout
    keys = ("env steps", "gradient steps", "target updates", "episodes")
    return {k: int(v.replace(",", "")) for k, v in zip(keys, match.groups(), strict=True)}


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path


@pytest.fixture
def no_proc_meminfo(monkeypatch):
    """A machine without /proc/meminfo (macOS, Windows): the path neither exists nor opens."""
    exists, real_open = os.path.exists, builtins.open

    def open_anything_else(file, *args, **kwargs):
        if file == "/proc/meminfo":
            raise FileNotFoundError(2, "No such file or directory", file)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(os.path, "exists", lambda path: path != "/proc/meminfo" and exists(path))
    monkeypatch.setattr(builtins, "open", open_anything_else)
