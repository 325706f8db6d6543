"""Benchmark kit: run a grid of script x env id x seed x extra flags, here or on Slurm, then report it.

    python benchmark/grid.py run --scripts dqn.py double_dqn.py --envs CartPole-v1 Acrobot-v1 --seeds 1 2 3 --jobs 2
    python benchmark/grid.py slurm --scripts dqn_atari.py --envs BreakoutNoFrameskip-v4 --seeds 1 2 3 -- --cuda
    python benchmark/grid.py report --out benchmark/results/grid

Every run has a folder `{out}/{script}__{env}__{flags}__seed{N}/` (flags: the extra flags, or `default`; a long
list is cut and ends in a hash of it) in which the script runs, so its `runs/*/metrics.csv` lands there; a `DONE`
file marks a finished run, and finished runs are skipped, so an interrupted grid is resumed by running the same
command again: a run stopped with a checkpoint (Ctrl-C, SIGTERM, a Slurm time limit, --checkpoint-frequency) goes
on from its newest one (`--resume`). `slurm` writes the unfinished runs to a tasks file of its own and submits one
job array (`sbatch --array`), one run per task, each task running `grid.py task`; `report` reads the same folders
whichever way they were filled, one row per script, env and flags (several `--out` folders: their runs pooled; `--draws
20`: how often 20 seeds drawn from them meet CartPole-v1's goals). Extra flags after `--` go to every run.
"""

import argparse
import csv
import hashlib
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmark" / "results" / "grid"
# Published DQN figures the report puts beside both scripts: CleanRL's dqn.py (mean +- std over 3 seeds of its
# training returns, 500k steps) and rl-baselines3-zoo's tuned SB3 DQN (one agent's greedy evaluation, its budget).
PUBLISHED = {
    "CartPole-v1": "CleanRL 488.69 +- 16.11 (500k); SB3 zoo 500.00 (50k)",
    "Acrobot-v1": "CleanRL -91.54 +- 7.20 (500k); SB3 zoo -76.64 (100k)",
    "MountainCar-v0": "CleanRL -194.95 +- 8.48 (500k); SB3 zoo -100.85 (120k)",
}


def flags_tag(flags: list[str]) -> str:
    tag = "".join(c if c.isalnum() or c in "._-" else "-" for c in "_".join(f.lstrip("-") for f in flags) or "default")
    return tag if len(tag) <= 120 else f"{tag[:100]}-{hashlib.sha1(tag.encode()).hexdigest()[:12]}"  # a folder name


def grid_runs(a) -> list[dict]:
    """One dict per run: its folder and the command that makes it."""
    runs = []
    for script in a.scripts:
        for env_id in a.envs:
            for seed in a.seeds:
                folder = a.out / f"{script[:-3]}__{env_id.replace(':', '-')}__{flags_tag(a.flags)}__seed{seed}"
                command = [sys.executable, str(ROOT / script), "--env-id", env_id, "--seed", str(seed), *a.flags]
                runs.append({"script": script, "env": env_id, "seed": seed, "folder": folder, "command": command})
    return runs


def is_done(run: dict) -> bool:
    return (run["folder"] / "DONE").exists()


def execute(folder: Path, command: list[str]) -> int:
    """Run one grid cell in its folder, from its newest checkpoint if a stopped run left one; DONE when it succeeded."""
    folder.mkdir(parents=True, exist_ok=True)
    checkpoints = sorted(folder.glob("runs/*/checkpoint.pt"), key=lambda p: p.stat().st_mtime)
    command = [*command, "--resume", str(checkpoints[-1])] if checkpoints else command
    with open(folder / "stdout.txt", "a") as out:  # a resumed run's output follows the stopped one's
        code = subprocess.run(command, cwd=folder, stdout=out, stderr=subprocess.STDOUT).returncode
    if code == 0:
        (folder / "DONE").write_text(shlex.join(command) + "\n")
    return code


def run_local(a) -> int:
    runs = grid_runs(a)
    todo = [r for r in runs if not is_done(r)]
    print(f"{len(runs)} runs, {len(runs) - len(todo)} already done, {len(todo)} to run, {a.jobs} at a time", flush=True)
    failed, start = 0, time.time()
    with ThreadPoolExecutor(a.jobs) as pool:
        futures = {pool.submit(execute, r["folder"], r["command"]): r for r in todo}
        for k, future in enumerate(as_completed(futures), 1):
            r, code = futures[future], future.result()
            failed += code != 0
            status = "done" if code == 0 else f"FAILED (exit {code}, see {r['folder'] / 'stdout.txt'})"
            print(f"[{k}/{len(todo)}] {time.time() - start:7.1f} s  {r['folder'].name}: {status}", flush=True)
    return 1 if failed else 0


def run_slurm(a) -> int:
    todo = [r for r in grid_runs(a) if not is_done(r)]
    if not todo:
        print("every run is done already")
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    tasks = a.out / f"tasks-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"  # a later submission has its own
    tasks.write_text("".join(f"{r['folder']}\t{shlex.join(r['command'])}\n" for r in todo))
    (a.out / "slurm-logs").mkdir(exist_ok=True)
    job = tasks.with_suffix(".sbatch")
    job.write_text(
        "#!/bin/bash\n"
        f"#SBATCH --job-name=dqn-grid\n#SBATCH --array=0-{len(todo) - 1}%{a.jobs}\n"
        f'#SBATCH --output="{a.out / "slurm-logs" / "%A_%a.out"}"\n'  # quoted: a path with spaces
        + "".join(f"#SBATCH {opt}\n" for opt in a.sbatch)
        + f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).resolve()))} task "
        f"{shlex.quote(str(tasks))} $SLURM_ARRAY_TASK_ID\n"
    )
    print(f"{len(todo)} runs in {tasks}; job script {job}")
    if a.dry_run:
        return 0
    proc = subprocess.run(["sbatch", "--parsable", str(job)], capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"sbatch failed: {proc.stderr.strip()}", file=sys.stderr)
        return proc.returncode
    print(f"submitted job array {proc.stdout.strip()}; `grid.py report` gathers the results when it is done")
    return 0


def run_task(tasks: Path, index: int) -> int:
    folder, command = tasks.read_text().splitlines()[index].split("\t")
    return execute(Path(folder), shlex.split(command))


def episodes(folder: Path) -> tuple[np.ndarray, dict] | None:
    """(global_step, return, wall_time) of the training episodes of the run in `folder`, and its last SPS, wall time,
    env step and highest logged batch-mean Q (past r_max / (1 - gamma): values ran away); None without episodes."""
    paths = sorted(folder.glob("runs/*/metrics.csv"))
    with open(paths[-1] if paths else os.devnull, newline="") as f:
        rows = list(csv.DictReader(f))
    episode_rows = [r for r in rows if r["metric"] == "charts/episodic_return"]
    returns = np.array([(int(r["global_step"]), float(r["value"]), float(r["wall_time"])) for r in episode_rows])
    sps = [float(r["value"]) for r in rows if r["metric"] == "charts/SPS"]
    q_values = [float(r["value"]) for r in rows if r["metric"] == "losses/q_values"]  # batch means, every 100th step
    stats = {"sps": sps[-1] if sps else float("nan"), "wall": float(rows[-1]["wall_time"]) if rows else 0.0}
    stats["max_q"] = max(q_values, default=float("nan"))
    return (returns, stats | {"steps": int(rows[-1]["global_step"])}) if len(returns) else None


def final_return(returns: np.ndarray) -> float:
    """Mean return of the last 10% of training episodes (at least one), as CleanRL reports."""
    return float(returns[-max(1, len(returns) // 10) :, 1].mean())


def means_of_20(returns: np.ndarray) -> np.ndarray:
    """The mean of each 20 consecutive training returns, the i-th ending at episode i + 19; empty under 20 episodes."""
    return np.convolve(returns[:, 1], np.ones(20) / 20, mode="valid") if len(returns) >= 20 else np.array([])


def last_20(returns: np.ndarray) -> tuple[float, float]:
    """Mean of the last 20 training returns (of all, if fewer), and the best mean of 20 consecutive ones (CartPole
    solved: >= 475; NaN, never solved, under 20 episodes)."""
    means = means_of_20(returns)
    return float(returns[-20:, 1].mean()), float(means.max()) if len(means) else float("nan")


def solved_at(returns: np.ndarray, bar: float = 475.0, column: int = 0) -> float | None:
    """The env step (column 0; column 2: the wall time in s) of the episode that first brings a mean of 20 consecutive
    returns to `bar`; None if none does."""
    reached = np.flatnonzero(means_of_20(returns) >= bar)
    return returns[reached[0] + 19, column].item() if reached.size else None


def report(a) -> int:
    groups: dict[tuple[str, str, str], list[Path]] = {}
    for done in sorted(d for out in a.out for d in out.glob("*/DONE")):  # a row per flag set, runs of all `out`s
        script, env_id, *tag, _ = done.parent.name.split("__")
        groups.setdefault((script + ".py", env_id, "__".join(tag)), []).append(done.parent)
    tags = [(script, env_id) for script, env_id, _ in groups]  # several flag sets of one script and env: name them
    groups = {(s + f" [{tag}]" * (tags.count((s, e)) > 1), e): folders for (s, e, tag), folders in groups.items()}
    if not groups:
        print(f"no finished runs under {' '.join(map(str, a.out))}", file=sys.stderr)
        return 1
    print("| script | env | env steps | seeds | final return (last 10% of episodes) | last 20 episodes | solved "
          "(20 in a row >= 475) | SPS | wall (s) | published |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    curves, seeds, draws = {}, [], []
    for (script, env_id), all_folders in sorted(groups.items()):
        data, folders = [], []
        for folder in all_folders:
            if (run := episodes(folder)) is None:
                print(f"note: {folder.name} logged no episode; left out", file=sys.stderr)
            else:
                data, folders = [*data, run], [*folders, folder]
        if not data:
            continue
        finals, lasts = [final_return(r) for r, _ in data], [last_20(r) for r, _ in data]
        sps, wall = np.mean([s["sps"] for _, s in data]), np.mean([s["wall"] for _, s in data])
        steps, solved = sorted({s["steps"] for _, s in data}), sum(best >= 475 for _, best in lasts)
        solved = f"{solved} of {len(folders)}" if env_id.startswith("CartPole") else "-"  # 475: CartPole's bar
        print(
            f"| {script} | {env_id} | {'/'.join(f'{n:,}' for n in steps)} | {len(folders)} | {np.mean(finals):.2f} +- "
            f"{np.std(finals):.2f} | {np.mean([m for m, _ in lasts]):.2f} | {solved} | {sps:,.0f} | "
            f"{wall:.1f} | {PUBLISHED.get(env_id, '-')} |"
        )
        curves[(script, env_id)] = [r for r, _ in data]
        if a.draws and env_id.startswith("CartPole"):
            draws.append(goal_chances(script, env_id, lasts, a.draws))
        for folder, final, (last, best), (run, s) in zip(folders, finals, lasts, data, strict=True):
            step, wall = (solved_at(run, column=c) if env_id.startswith("CartPole") else None for c in (0, 2))
            solved = " | ".join("-" if v is None else f"{v:,.{digits}f}" for v, digits in ((step, 0), (wall, 1)))
            seeds.append(f"| {script} | {env_id} | {folder.name.rsplit('seed', 1)[1]} | {final:.2f} | {last:.2f} | "
                         f"{best:.2f} | {solved} | {s['max_q']:.1f} | {s['wall']:.1f} |")  # fmt: skip
    if a.per_seed:
        print("\n| script | env | seed | final (last 10%) | last 20 | best 20 in a row | solved at (env step) "
              "| solved after (s) | highest batch-mean Q | wall (s) |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(seeds))
    if draws:
        print("", *draws, sep="\n")
    if curves:
        plot(curves, a.plot or a.out[0] / "curves.png")
    return 0


def goal_chances(script: str, env_id: str, lasts: list[tuple[float, float]], n: int, draws: int = 100_000) -> str:
    """How often n seeds drawn (with replacement) from these runs meet CartPole-v1's goals (docs/tuning.md): at least
    n - 1 of them reach 475 (a mean of 20 in a row), and the mean of their last-20 means is at least 490."""
    last, best = np.array(lasts).T
    picks = np.random.default_rng(0).integers(len(lasts), size=(draws, n))
    solved, mean_ok = (best[picks] >= 475).sum(axis=1) >= n - 1, last[picks].mean(axis=1) >= 490
    return (f"{script} {env_id}: {n} seeds drawn from these {len(lasts)} ({draws:,} draws): at least {n - 1} reach 475 "
            f"in {solved.mean():.1%}, a mean last 20 of 490 or more in {mean_ok.mean():.1%}, both in "
            f"{(solved & mean_ok).mean():.1%}")  # fmt: skip


def plot(curves: dict, path: Path) -> None:
    """Return against env steps per env: mean over seeds (of a 10-episode running mean), band from min to max."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = sorted({env for _, env in curves})
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.6), squeeze=False)
    for ax, env_id in zip(axes[0], envs, strict=True):
        for script in sorted({s for s, e in curves if e == env_id}):
            runs = curves[(script, env_id)]
            grid = np.linspace(0, min(r[-1, 0] for r in runs), 200)
            window = min(10, *(len(r) for r in runs))
            smooth = [np.convolve(r[:, 1], np.ones(window) / window, mode="valid") for r in runs]
            values = np.array([np.interp(grid, r[window - 1 :, 0], s) for r, s in zip(runs, smooth, strict=True)])
            ax.plot(grid, values.mean(0), label=f"{script} ({len(runs)} seeds)")
            ax.fill_between(grid, values.min(0), values.max(0), alpha=0.2)
        ax.set_title(env_id)
        ax.set_xlabel("env steps")
        ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}k")
        ax.set_ylabel("episodic return")
        ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    print(f"curves: {path}")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    flags = argv[argv.index("--") + 1 :] if "--" in argv else []
    argv = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "slurm"):
        p = sub.add_parser(name)
        p.add_argument("--scripts", nargs="+", default=["dqn.py", "double_dqn.py"])
        p.add_argument("--envs", nargs="+", default=["CartPole-v1", "Acrobot-v1", "MountainCar-v0"])
        p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
        p.add_argument("--out", type=Path, default=DEFAULT_OUT)
        p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs at once (slurm: array tasks)")
    sub.choices["slurm"].add_argument(
        "--sbatch",
        action="append",
        default=[],
        help="an #SBATCH line, repeatable: --sbatch=--time=4:00:00 (with '=': the value starts with '-')",
    )
    sub.choices["slurm"].add_argument("--dry-run", action="store_true", help="write the job script, submit nothing")
    task = sub.add_parser("task", help="run task INDEX of a tasks file (what each Slurm array task does)")
    task.add_argument("tasks", type=Path)
    task.add_argument("index", type=int)
    rep = sub.add_parser("report")
    rep.add_argument("--out", type=Path, nargs="+", default=[DEFAULT_OUT], help="grid folders; several are pooled")
    rep.add_argument(
        "--draws", type=int, metavar="N", help="CartPole: how often N seeds drawn from these meet its goals"
    )
    rep.add_argument("--plot", type=Path, help="where to write the curves (default: OUT/curves.png)")
    rep.add_argument("--per-seed", action="store_true", help="also a table of every run")
    a = parser.parse_args(argv)
    a.flags = flags
    if a.command == "task":
        return run_task(a.tasks, a.index)
    a.out = [out.resolve() for out in a.out] if a.command == "report" else a.out.resolve()
    return {"run": run_local, "slurm": run_slurm, "report": report}[a.command](a)


if __name__ == "__main__":
    sys.exit(main())
