"""benchmark/grid.py: a grid runs, skips what is done, reports; and goes through a real single-node Slurm."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, SHORT, TESTS, load_script, summary

grid = load_script("benchmark/grid.py")
TINY = ["--", *SHORT, "--total-timesteps", "300"]


def test_final_return_is_mean_of_last_tenth_of_episodes():
    returns = np.array([(i, float(i)) for i in range(1, 31)])
    assert grid.final_return(returns) == np.mean([28.0, 29.0, 30.0])
    assert grid.final_return(returns[:5]) == 5.0  # fewer than 10 episodes: the last one


def test_last_20_needs_20_episodes_to_count_as_solved():
    returns = np.array([(i, 500.0 if i == 12 else 0.0) for i in range(1, 13)])  # 12 episodes, the last one 500
    last, best = grid.last_20(returns)
    assert last == 500.0 / 12 and np.isnan(best) and not best >= 475
    last, best = grid.last_20(np.array([(i, float(i)) for i in range(1, 31)]))
    assert last == np.mean(range(11, 31)) and best == last


def finished_run(folder: Path, returns: list[float], extra_rows=()) -> None:
    """A finished grid run in `folder` whose metrics.csv logs episode i (from 1) at env step i, wall time i / 4 s."""
    (folder / "runs" / "r").mkdir(parents=True)
    (folder / "DONE").touch()
    rows = [*((i, "charts/episodic_return", r) for i, r in enumerate(returns, start=1)), *extra_rows]
    lines = ["global_step,wall_time,metric,value", *(f"{step},{step / 4},{name},{value}" for step, name, value in rows)]
    (folder / "runs" / "r" / "metrics.csv").write_text("\n".join(lines) + "\n")


def test_per_seed_report_shows_when_each_run_solved_and_its_highest_batch_mean_q(tmp_path, capsys):
    returns = [400.0 if i < 5 else 500.0 for i in range(1, 31)]  # solved at episode 20
    q_values = [(5, "losses/q_values", 12.5), (9, "losses/q_values", 250.25), (30, "losses/q_values", 40.0)]
    finished_run(tmp_path / "dqn__CartPole-v1__default__seed7", returns, q_values)
    assert grid.main(["report", "--out", str(tmp_path), "--per-seed"]) == 0  # solved at step 20, 5.0 s; run 7.5 s
    assert "| dqn.py | CartPole-v1 | 7 | 500.00 | 500.00 | 500.00 | 20 | 5.0 | 250.2 | 7.5 |" in capsys.readouterr().out


def test_report_pools_grid_folders_and_says_how_often_drawn_seeds_meet_the_cartpole_goals(tmp_path, capsys):
    """Two of 2 seeds drawn with replacement: those at 500, 500 (folder a) and 480 (b) all reach 475, and their mean
    is under 490 only when both are the 480 (1/9 of draws); with one at 400 too, 8 of the 16 pairs meet both goals."""

    def chances(seeds: int) -> list[float]:  # the report's three percentages, in the order it prints them
        report = ["report", "--out", str(tmp_path / "a"), str(tmp_path / "b"), "--draws", "2"]
        assert grid.main(report) == 0
        line = capsys.readouterr().out.split(f"dqn.py CartPole-v1: 2 seeds drawn from these {seeds} ")[1]
        return [float(part.split("%")[0]) for part in line.split(" in ")[1:]]

    for folder, seed, value in (("a", 1, 500.0), ("a", 2, 500.0), ("b", 3, 480.0)):
        finished_run(tmp_path / folder / f"dqn__CartPole-v1__default__seed{seed}", [value] * 30)
    assert grid.main(["report", "--out", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "| dqn.py | CartPole-v1 | 30 | 3 | 493.33 +- 9.43 | 493.33 | 3 of 3 |" in capsys.readouterr().out
    solved, mean_ok, both = chances(3)
    assert solved == 100.0 and abs(mean_ok - 100 * 8 / 9) < 0.5 and both == mean_ok
    finished_run(tmp_path / "b" / "dqn__CartPole-v1__default__seed4", [400.0] * 30)
    solved, mean_ok, both = chances(4)
    assert abs(solved - 100 * 15 / 16) < 0.5 and abs(mean_ok - 50) < 0.5 and both == mean_ok


def test_solved_at_is_the_step_of_the_episode_that_completes_the_first_mean_of_20_at_475():
    returns = np.array([(100 * i, 400.0 if i < 5 else 500.0, 2.5 * i) for i in range(1, 41)])  # episodes 1-4 at 400
    assert grid.solved_at(returns) == 100 * 20  # episodes 1-20: (4 * 400 + 16 * 500) / 20 = 480, at episode 20's step
    assert grid.solved_at(returns, column=2) == 2.5 * 20  # and at its wall time
    assert grid.solved_at(np.array([(100 * i, 470.0, i) for i in range(1, 41)])) is None
    assert grid.solved_at(returns[:19]) is None  # under 20 episodes


def test_a_long_flag_list_makes_a_short_distinct_folder_name():
    flags = [f"--flag-number-{i}" for i in range(30)]
    tags = {grid.flags_tag(flags), grid.flags_tag([*flags, "1"]), grid.flags_tag([*flags, "2"])}
    assert len(tags) == 3 and all(len(tag) <= 120 for tag in tags)


def test_a_stopped_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A cell stopped by SIGTERM (a Slurm time limit) left a checkpoint, no DONE: the next grid run goes on from it."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    args = ["run", "--scripts", "dqn.py", "--envs", "toy_envs:ToyChain-v0", "--seeds", "1", "--out", str(tmp_path)]
    monkeypatch.setenv("TOY_SIGNAL_AT", "250:15")  # the toy env sends SIGTERM to its process at its 250th step
    assert grid.main([*args, *TINY]) == 1 and not list(tmp_path.glob("*/DONE"))
    monkeypatch.delenv("TOY_SIGNAL_AT")
    assert grid.main([*args, *TINY]) == 0 and list(tmp_path.glob("*/DONE"))
    (stdout,) = tmp_path.glob("*/stdout.txt")
    assert "stopped by signal 15 at env step 250" in stdout.read_text() and "resumed" in stdout.read_text()
    assert summary(stdout.read_text().split("resumed")[1])["env steps"] == 300


def test_report_keeps_flag_sets_apart_and_leaves_out_runs_without_episodes(tmp_path, capsys):
    base = ["run", "--scripts", "dqn.py", "--envs", "CartPole-v1", "--seeds", "1", "--out", str(tmp_path)]
    assert grid.main([*base, *TINY]) == 0 and grid.main([*base, *TINY, "--learning-rate", "0.01"]) == 0
    short = ["--total-timesteps", "150", "--learning-starts", "100"]  # MountainCar's episodes last 200 steps
    assert grid.main([*base[:4], "MountainCar-v0", *base[5:], *TINY, *short]) == 0
    assert grid.main(["report", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    rows = [line for line in out.splitlines() if line.startswith("| dqn.py [") and "| CartPole-v1 | 300 | 1 |" in line]
    assert len({row.split("]")[0] for row in rows}) == 2  # two rows, each named by its flags (long ones hashed)
    assert "MountainCar-v0 |" not in out and "logged no episode" in err


def test_run_skips_finished_runs_and_reports(tmp_path, capsys):
    args = ["--scripts", "dqn.py", "double_dqn.py", "--envs", "CartPole-v1", "--seeds", "1", "2", "--jobs", "2"]
    assert grid.main(["run", *args, "--out", str(tmp_path), *TINY]) == 0
    done = sorted(p.parent.name for p in tmp_path.glob("*/DONE"))
    assert len(done) == 4 and done[0].startswith("double_dqn__CartPole-v1__") and done[0].endswith("seed1")
    assert "4 to run" in capsys.readouterr().out
    assert grid.main(["run", *args, "--out", str(tmp_path), *TINY]) == 0
    assert "4 already done, 0 to run" in capsys.readouterr().out
    assert grid.main(["report", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| dqn.py | CartPole-v1 | 300 | 2 |" in out and "CleanRL 488.69 +- 16.11" in out
    assert "| double_dqn.py | CartPole-v1 | 300 | 2 |" in out
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_failed_run_is_reported_and_not_marked_done(tmp_path, capsys):
    args = ["--scripts", "dqn.py", "--envs", "NoSuchEnv-v0", "--seeds", "1", "--jobs", "1", "--out", str(tmp_path)]
    assert grid.main(["run", *args]) == 1
    assert "FAILED (exit 2" in capsys.readouterr().out and not list(tmp_path.glob("*/DONE"))


def test_atari_grid_smoke(tmp_path, monkeypatch):
    """The Atari grid (Breakout, Pong, BeamRider, 10M steps, 3 seeds) is meant for a GPU cluster; a tiny cell here."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    tiny = ["--", "--total-timesteps", "200", "--learning-starts", "100", "--buffer-size", "500", "--batch-size", "4"]
    args = ["--scripts", "dqn_atari.py", "--envs", "toy_envs:ToyBreakout-v0", "--seeds", "1", "--jobs", "1"]
    assert grid.main(["run", *args, "--out", str(tmp_path), *tiny, "--target-network-frequency", "50"]) == 0
    assert grid.main(["report", "--out", str(tmp_path)]) == 0
    (stdout,) = tmp_path.glob("*/stdout.txt")  # the cell's run: gradient steps at 104, 108, ..., 200; targets 150, 200
    counts = summary(stdout.read_text())
    assert (counts["gradient steps"], counts["target updates"]) == (25, 2)


def test_slurm_dry_run_writes_job_array(tmp_path):
    args = ["--scripts", "dqn.py", "--envs", "CartPole-v1", "Acrobot-v1", "--seeds", "1", "2", "3", "--jobs", "4"]
    assert grid.main(["slurm", *args, "--out", str(tmp_path), "--dry-run", "--sbatch=--gres=gpu:1", *TINY]) == 0
    (tasks,) = tmp_path.glob("tasks-*.txt")
    job = tasks.with_suffix(".sbatch").read_text()
    assert "#SBATCH --array=0-5%4" in job and "#SBATCH --gres=gpu:1" in job and f" task {tasks} " in job
    lines = tasks.read_text().splitlines()
    assert len(lines) == 6 and all("--total-timesteps 300" in line for line in lines)


SLURM_CONF = """ClusterName=grid
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture
def slurm(tmp_path_factory):
    """A single-node Slurm (slurmctld + slurmd from Debian's packages), started here and stopped after."""
    missing = [tool for tool in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing; CI installs Debian's slurmctld)")
    if os.geteuid() != 0:
        pytest.skip("starting slurmd needs root")
    folder = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    host = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
    conf = folder / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, dir=folder, cpus=os.cpu_count()))
    env = os.environ | {"SLURM_CONF": str(conf)}
    if subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode != 0:
        Path("/run/munge").mkdir(exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)
    subprocess.run(["slurmctld", "-f", str(conf)], env=env, check=True)
    subprocess.run(["slurmd", "-f", str(conf)], env=env, check=True)
    try:
        for _ in range(60):
            state = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout
            if state.strip() == "idle":
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"Slurm did not come up: {state!r}; see {folder}")
        yield env
    finally:
        subprocess.run(["scontrol", "shutdown"], env=env, capture_output=True)
        for pid_file in ("slurmd.pid", "slurmctld.pid"):
            if (folder / pid_file).exists():
                subprocess.run(["kill", (folder / pid_file).read_text().strip()], capture_output=True)


def test_grid_on_real_slurm(slurm, tmp_path):
    """Two grids submitted at once into one folder whose path has a space: each array runs its own runs."""
    out = tmp_path / "my grid"
    args = ["--scripts", "dqn.py", "--envs", "CartPole-v1", "--jobs", "2", "--out", str(out)]
    command = [sys.executable, str(ROOT / "benchmark" / "grid.py")]
    for seeds in (["1", "2"], ["3"]):
        proc = subprocess.run(
            [*command, "slurm", *args, "--seeds", *seeds, *TINY], env=slurm, capture_output=True, text=True
        )
        assert proc.returncode == 0 and "submitted job array" in proc.stdout, proc.stdout + proc.stderr
    deadline = time.time() + 300
    while len(list(out.glob("*/DONE"))) < 3 and time.time() < deadline:
        time.sleep(1)
    logs = "".join(p.read_text() for p in (out / "slurm-logs").glob("*.out"))
    assert len(list(out.glob("*/DONE"))) == 3, logs
    again = subprocess.run(
        [*command, "slurm", *args, "--seeds", "1", "2", "3", *TINY], env=slurm, capture_output=True, text=True
    )
    assert "every run is done already" in again.stdout
    report = subprocess.run([*command, "report", "--out", str(out)], capture_output=True, text=True)
    assert "| dqn.py | CartPole-v1 | 300 | 3 |" in report.stdout
