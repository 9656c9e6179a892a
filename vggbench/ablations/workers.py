"""A sweep in several processes sharing one store through the run locks (`vggbench.locks`):
`run_workers` (--jobs N) starts N worker processes on this machine that each take the runs no
other holds, and `submit_sweep` (--submit) sends the sweep's shards to a cluster as an array job
through submitit. The analysis runs once the runs are done (`sweep.analyse`)."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from vggbench.ablations.spec import preset_budget
from vggbench.ablations.stats import AblationRecord
from vggbench.ablations.sweep import SweepArgs, SweepHooks, SweepStep, analyse, run_ablation, train_sweep
from vggbench.checks import cores
from vggbench.errors import VggbenchError
from vggbench.train import TrainingInterrupted

SUBMIT_TARGETS = ("slurm", "local")  # local: submitit's LocalExecutor, this machine's processes
SUBMITIT_FOLDER = "submitit"  # <results>/submitit/<job id>/: the array's pickles and logs


def check_jobs(jobs: int) -> None:
    if jobs < 1:
        raise VggbenchError(f"--jobs {jobs}: need at least 1 (the number of runs at once)")


# --- Local workers (--jobs N) ----------------------------------------------------------------------


def worker_environments(jobs: int, device: str) -> list[dict[str, str]]:
    """Each worker's environment: on GPUs one GPU each (CUDA_VISIBLE_DEVICES, of those visible
    here), on the CPU an equal share of the cores (torch threads = cores // N, at least 1)."""
    check_jobs(jobs)
    name = (device or "auto").strip().lower()
    if name.startswith("cuda:") and jobs > 1:
        raise VggbenchError(
            f"--device {device} with --jobs {jobs}: each worker gets a GPU of its own; use --device cuda"
        )
    if name != "cpu" and torch.cuda.is_available():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        gpus = (
            [g for g in visible.split(",") if g.strip()]
            if visible
            else [str(i) for i in range(torch.cuda.device_count())]
        )
        if jobs > len(gpus):
            raise VggbenchError(
                f"--jobs {jobs}: one worker per GPU and {len(gpus)} are visible; "
                f"use --jobs {len(gpus)} or fewer"
            )
        return [{"CUDA_VISIBLE_DEVICES": gpus[i]} for i in range(jobs)]
    threads = str(max(1, len(os.sched_getaffinity(0)) // jobs))
    return [{"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads} for _ in range(jobs)]


def run_workers(
    args: SweepArgs, jobs: int, on_run: Callable[[int, SweepStep], None] | None = None
) -> AblationRecord:
    """Train the sweep's runs in `jobs` worker processes (spawned, each with its environment from
    `worker_environments`), then analyse the store once. `on_run(worker, step)` hears of each run a
    worker starts; a run the store already held when a worker came to it says stored."""
    environments = worker_environments(jobs, args.device)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: CUDA and threads set anew
    events = context.Queue()
    workers = []
    for index, environment in enumerate(environments, 1):
        with _environment(environment):  # a spawned child starts with the parent's os.environ
            worker = context.Process(
                target=_worker, args=(index, args, events), name=f"vggbench-worker-{index}"
            )
            worker.start()
        workers.append(worker)
    try:
        errors = _follow(workers, events, on_run)
    except KeyboardInterrupt:
        for worker in workers:  # they had Ctrl-C too: each saves its run's checkpoint and stops
            worker.join()
        raise TrainingInterrupted(
            "interrupted; each worker saved its run's checkpoint; rerun the same command to continue"
        ) from None
    for worker in workers:
        if worker.exitcode and worker.name not in errors:
            errors[worker.name] = f"stopped with exit code {worker.exitcode}"
    if errors:
        raise VggbenchError("; ".join(f"{name}: {error}" for name, error in sorted(errors.items())))
    # every run is stored by now: this reads them and analyses
    return run_ablation(replace(args, quiet=True))


def _follow(workers: list, events: Any, on_run: Callable[[int, SweepStep], None] | None) -> dict[str, str]:
    """Pass the workers' events on until all have stopped; the errors they reported, by worker."""
    errors: dict[str, str] = {}
    while True:
        try:
            kind, index, payload = events.get(timeout=0.2)
        except queue.Empty:
            if not any(worker.is_alive() for worker in workers):
                return errors
            continue
        if kind == "run" and on_run is not None:
            on_run(index, payload)
        elif kind == "error":
            errors[f"vggbench-worker-{index}"] = payload


def _worker(index: int, args: SweepArgs, events: Any) -> None:
    """One worker: the sweep's runs that no other process holds (each under its lock)."""
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    try:
        train_sweep(args, SweepHooks(on_run=lambda step: events.put(("run", index, step))))
    except KeyboardInterrupt as interrupted:
        events.put(("error", index, str(interrupted) or "interrupted"))
        sys.exit(130)
    except VggbenchError as error:
        events.put(("error", index, str(error)))
        sys.exit(2)


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- An array job (--submit) -----------------------------------------------------------------------


@dataclass(frozen=True)
class SlurmOptions:
    """What each array task asks the cluster for (None: the cluster's default)."""

    partition: str | None = None
    time_min: int | None = None
    gpus: int | None = None


def slurm_options(
    submit: str | None,
    shard: str | None,
    jobs: int | None,
    partition: str | None,
    time_min: int | None,
    gpus: int | None,
) -> SlurmOptions:
    """ablate's --submit, --jobs and --slurm-* options, checked against each other."""
    if jobs is not None:
        check_jobs(jobs)
    if jobs is not None and submit is None and jobs > cores():
        raise VggbenchError(
            f"--jobs {jobs} must be at most {cores()} (the cores here; one run per GPU, or a share of "
            "the cores each); with --submit it counts the array's tasks"
        )
    if submit is not None and submit not in SUBMIT_TARGETS:
        raise VggbenchError(f"--submit {submit!r}: use {' or '.join(SUBMIT_TARGETS)}")
    if submit is not None and shard is not None:
        raise VggbenchError(
            "--shard with --submit: the array's task i runs shard i of N; drop --shard and set N with --jobs"
        )
    given = {"--slurm-partition": partition, "--slurm-time": time_min, "--slurm-gpus": gpus}
    for flag, value in given.items():
        if value is not None and submit != "slurm":
            raise VggbenchError(f"{flag} applies to --submit slurm only")
    if time_min is not None and time_min < 1:
        raise VggbenchError(f"--slurm-time {time_min}: give the time limit in minutes, at least 1")
    if gpus is not None and gpus < 0:
        raise VggbenchError(f"--slurm-gpus {gpus}: need 0 or more")
    if partition is not None and not partition.strip():
        raise VggbenchError("--slurm-partition is empty; name a partition (sinfo lists them)")
    if submit == "slurm" and shutil.which("srun") is None:
        raise VggbenchError(
            "--submit slurm: no srun on this machine's PATH (submitit submits through Slurm); run the "
            "command on the cluster's login node, or use --submit local or --jobs here"
        )
    return SlurmOptions(partition, time_min, gpus)


def submit_and_wait(
    args: SweepArgs, jobs: int | None, target: str, slurm: SlurmOptions, note: Callable[[str], None]
) -> AblationRecord | None:
    """Submit the sweep's array (one task per seed unless `jobs`); under local, wait for it and
    return the analysis (None for slurm, whose tasks outlive this process). `note` hears where."""
    tasks = jobs or args.seeds
    submitted = submit_sweep(args, tasks, target, slurm)
    array = str(submitted[0].job_id).split("_")[0]
    note(
        f"submitted job {array}: {tasks} array tasks, task i runs --shard i/{tasks}; "
        f"logs in {args.results_dir / SUBMITIT_FOLDER}"
    )
    if target == "slurm":
        note(f"once it is done: vggbench report --results-dir {args.results_dir}")
        return None
    wait_for(submitted)
    budget = preset_budget(args.spec, args.preset, args.overrides)
    return analyse(
        args.spec, seeds=args.seeds, preset=args.preset, budget=budget, results_dir=args.results_dir
    )


def submit_sweep(args: SweepArgs, tasks: int, target: str, slurm: SlurmOptions = SlurmOptions()) -> list:
    """Send the sweep as an array job of `tasks` tasks through submitit: task i runs shard i of
    `tasks` (`sweep.sweep`'s split, by seed) and analyses what the store then holds, so the last
    task to finish leaves the full record. The submitit jobs, in shard order."""
    if target not in SUBMIT_TARGETS:
        raise VggbenchError(f"--submit {target!r}: use {' or '.join(SUBMIT_TARGETS)}")
    check_jobs(tasks)
    if tasks > args.seeds:
        raise VggbenchError(
            f"--jobs {tasks} with --submit: the sweep splits by seed into at most {args.seeds} shards; "
            f"use --jobs {args.seeds} or fewer"
        )
    try:
        import submitit  # lazy: an optional dependency, needed only to submit
    except ImportError:
        raise VggbenchError("--submit needs the submitit package: pip install submitit") from None
    executor = submitit.AutoExecutor(folder=Path(args.results_dir) / SUBMITIT_FOLDER / "%j", cluster=target)
    executor.update_parameters(
        name=f"vggbench-{args.spec.name}", timeout_min=slurm.time_min, gpus_per_node=slurm.gpus
    )
    if target == "slurm" and slurm.partition:
        executor.update_parameters(slurm_partition=slurm.partition)
    shards = [replace(args, shard=(index, tasks)) for index in range(1, tasks + 1)]
    try:
        return executor.map_array(array_task, shards)
    except (OSError, RuntimeError) as error:  # no sbatch here, or the cluster refused the job
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise VggbenchError(
            f"--submit {target}: cannot submit the array ({reason}); submit from a cluster login node, "
            "or run --shard i/N in one job each"
        ) from None


def wait_for(jobs: list) -> None:
    """Wait for every array task; a failed one is named with its log."""
    for index, job in enumerate(jobs, 1):
        try:
            job.result()
        except (
            RuntimeError
        ):  # submitit's UncompletedJobError / FailedJobError: the task's traceback is in its log
            raise VggbenchError(
                f"array task {index} (shard {index}/{len(jobs)}) failed; see its log {job.paths.stderr}"
            ) from None


def array_task(args: SweepArgs) -> AblationRecord:
    """One array task: its shard's runs, then the analysis of the store."""
    return run_ablation(args)
