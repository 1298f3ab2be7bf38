"""Many machines: the same image jobs as the local path, spread over Ray Data workers (``deepanon image SRC -o DST
--ray [ADDRESS]``), resumable.

Each worker is a Ray Data map actor that loads the model once and runs the local path's :func:`anonymize_images` on
the groups of files it is given: the driver cuts the files into the local path's groups (as many photos as one
generator batch holds faces: 1-2 on a CPU worker, 16 on a GPU one), so the outputs, reports and fail-closed rules
are the local path's, bit for bit (the driver sizes the groups for its own kind of CPU: workers on CPUs of another
kind still anonymize every face, their pixels may differ in rounding). When the cluster has GPUs (and ``--device``
is not ``cpu``) each worker takes one. Every finished file leaves a journal entry (its report, written atomically
after its output): a rerun skips the groups whose files all have their entry and output and redoes the others whole,
so a crash, a killed worker or a stopped run loses at most the groups in progress, and never leaves a partial output
(outputs are atomic as everywhere). The journal folder must be on storage that the driver and every worker see, as
the inputs and outputs must.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deepanon.api import Anonymizer, SetupError, files_per_call
from deepanon.files import atomic_write, partial_files
from deepanon.pipeline import Precision, Replacement, default_batch_size
from deepanon.models.precision import autocast_dtype
from deepanon.report import FileReport
from deepanon.runner import Job, anonymize_images, groups

JOURNAL_SUFFIX = ".deepanon-journal"


def default_journal(output: Path) -> Path:
    """``<output>.deepanon-journal`` beside the output folder: outside the tree to be shared."""
    return output.parent / f"{output.name}{JOURNAL_SUFFIX}"


def journal_entry(journal: Path, job: Job) -> Path:
    """Where the report of ``job`` is kept: one file per output, named by a hash of the output's absolute path."""
    return journal / f"{hashlib.sha256(os.path.abspath(job.target).encode()).hexdigest()[:32]}.json"


def finished(journal: Path, job: Job) -> FileReport | None:
    """The report of ``job`` from an earlier run, when it finished there without error and its output still exists."""
    entry = journal_entry(journal, job)
    try:
        saved = json.loads(entry.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("input") != str(job.source) or saved.get("error") is not None or not job.target.is_file():
        return None
    return FileReport(**saved)


class FileWorker:
    """A Ray Data map actor: builds the :class:`Anonymizer` once, then anonymizes each group of files it is given."""

    def __init__(self, options: dict[str, Any], journal: str, keep_metadata: bool, overwrite: bool,
                 threads: int) -> None:
        torch.set_num_threads(threads)
        self.anonymizer = Anonymizer(**options, detector_threads=threads)
        self.journal = Path(journal)
        self.keep_metadata, self.overwrite = keep_metadata, overwrite

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        done = []
        for group in batch["group"]:
            indices, jobs = zip(*((i, Job(Path(source), Path(target))) for i, source, target in json.loads(str(group))))
            reports = list(anonymize_images(jobs, self.anonymizer, keep_metadata=self.keep_metadata,
                                            overwrite=self.overwrite))
            records = [report.to_dict() for report in reports]
            for job, report, record in zip(jobs, reports, records, strict=True):
                if report.ok:
                    text = json.dumps(record)
                    atomic_write(journal_entry(self.journal, job), lambda tmp, text=text: tmp.write_text(text))
            done.append(json.dumps([[i, record] for i, record in zip(indices, records, strict=True)]))
        return {"reports": done}


@dataclass(frozen=True)
class WorkerPlan:
    """How many map actors, and what each takes: CPUs (its torch threads), GPUs (0 or 1), files per call."""

    actors: int
    cpus: int
    gpus: int
    files_per_call: int


def plan_workers(nodes: list[dict[str, float]], options: dict[str, Any], workers: int | None, files: int) -> WorkerPlan:
    """Actors for ``files`` photos on a cluster whose alive nodes have ``nodes`` resources (``ray.nodes()``).

    With GPUs (faces generated, ``options`` not asking for the CPU): one actor per GPU (``workers`` may ask for
    fewer), each with its node's CPUs shared among its GPUs (the leanest node's share, so every actor fits). Else one
    actor per CPU, or ``workers`` actors sharing the CPUs (at most a node's CPUs each). Never more actors than groups
    of files; files per call as each actor's :class:`Anonymizer` will have them."""
    generate = Replacement(options.get("replacement", Replacement.GENERATE)) is Replacement.GENERATE
    gpu_nodes = [n for n in nodes if n.get("GPU", 0) >= 1] if generate and options.get("device", "auto") != "cpu" else []
    device = torch.device("cuda" if gpu_nodes else "cpu")
    batch_size = options.get("batch_size") or default_batch_size(
        device, None if gpu_nodes else autocast_dtype(Precision(options.get("precision", Precision.AUTO)), device),
        bool(options.get("compile")))
    per_call = files_per_call(batch_size if generate else None)
    slots = sum(int(n["GPU"]) for n in gpu_nodes) or sum(int(n.get("CPU", 1)) for n in nodes) or 1
    actors = min(workers or slots, -(-files // per_call))
    actors = max(1, min(actors, slots) if gpu_nodes else actors)
    if gpu_nodes:
        cpus = min(int(n.get("CPU", 1)) // int(n["GPU"]) for n in gpu_nodes)
    else:
        cpus = min(slots // actors, max((int(n.get("CPU", 1)) for n in nodes), default=1))
    return WorkerPlan(actors, max(1, cpus), 1 if gpu_nodes else 0, per_call)


def remove_partials(jobs: list[Job]) -> None:
    """Remove the hidden temporary files of the jobs' outputs: a worker killed mid-write cannot remove its own. Only
    while no worker of this run is writing (before Ray starts, after it stops)."""
    for job in jobs:
        for stale in partial_files(job.target):
            stale.unlink(missing_ok=True)


def anonymize_on_ray(jobs: list[Job], options: dict[str, Any], *, address: str | None, workers: int | None,
                     journal: Path, keep_metadata: bool = False, overwrite: bool = False,
                     on_file: Callable[[], None] | None = None) -> tuple[list[FileReport], int]:
    """Run ``jobs`` on Ray Data: ``address`` None starts Ray on this machine, else joins that cluster (``auto``,
    ``ray://host:10001``); actors as :func:`plan_workers` says. ``options``: keyword arguments of
    :class:`Anonymizer`. A rerun redoes every group of files (the local path's groups of the whole job list) that
    holds a file not finished before, the whole group, so that its outputs are those of a fresh run. Returns (the
    reports in the order of ``jobs``, how many were already done). Raises :class:`SetupError` when Ray is not
    installed."""
    try:
        import ray
    except ImportError as err:
        raise SetupError("--ray needs Ray Data: pip install 'deepanon[cluster]'") from err
    journal.mkdir(parents=True, exist_ok=True)
    tick = on_file or (lambda: None)
    earlier = {i: report for i, job in enumerate(jobs) if (report := finished(journal, job)) is not None}
    remove_partials(jobs)
    if len(earlier) == len(jobs):
        for _ in jobs:
            tick()
        return [earlier[i] for i in range(len(jobs))], len(jobs)
    ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
             logging_level=logging.ERROR)
    context = ray.data.DataContext.get_current()
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # deepanon's own bar counts the files
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
        plan = plan_workers(nodes, options, workers, len(jobs) - len(earlier))
        todo, reports = [], {}
        for group in groups(range(len(jobs)), plan.files_per_call):
            if all(i in earlier for i in group):
                reports.update((i, earlier[i]) for i in group)
            else:
                todo.append(group)
        for _ in reports:
            tick()
        already = len(reports)
        items = [{"group": json.dumps([[i, str(jobs[i].source), str(jobs[i].target)] for i in group])} for group in todo]
        results = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            FileWorker, batch_size=1, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=plan.actors),
            num_cpus=plan.cpus, num_gpus=plan.gpus,
            fn_constructor_kwargs={"options": options, "journal": str(journal), "keep_metadata": keep_metadata,
                                   "overwrite": overwrite, "threads": plan.cpus})
        for row in results.iter_rows():
            for i, report in json.loads(row["reports"]):
                reports[i] = FileReport(**report)
                tick()
    finally:
        ray.shutdown()
        remove_partials(jobs)
    return [reports[i] for i in range(len(jobs))], already
