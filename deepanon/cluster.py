"""Many machines: the same image jobs as the local path, spread over Ray Data workers (``deepanon image SRC -o DST
--ray [ADDRESS]``), resumable.

Each worker is a Ray Data map actor that loads the model once and runs the local path's :func:`anonymize_image` on
the files it is given, so the outputs, reports and fail-closed rules are the local path's, bit for bit. Every
finished file leaves a journal entry (its report, written atomically after its output): a rerun skips the files
whose entry and output both exist and redoes the rest, so a crash, a killed worker or a stopped run loses at most
the files in progress, and never leaves a partial output (outputs are atomic as everywhere). The journal folder
must be on storage that the driver and every worker see, as the inputs and outputs must.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deepanon.api import Anonymizer, SetupError
from deepanon.files import atomic_write, partial_files
from deepanon.report import FileReport
from deepanon.runner import Job, anonymize_image, guarded

FILES_PER_CALL = 1  # files a worker takes at a time: each file's report reaches the driver as soon as it is done
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
    """A Ray Data map actor: builds the :class:`Anonymizer` once, then anonymizes the files of each batch."""

    def __init__(self, options: dict[str, Any], journal: str, keep_metadata: bool, overwrite: bool,
                 threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.anonymizer = Anonymizer(**options)
        self.journal = Path(journal)
        self.keep_metadata, self.overwrite = keep_metadata, overwrite

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        reports = []
        for source, target in zip(batch["source"], batch["target"], strict=True):
            job = Job(Path(str(source)), Path(str(target)))
            report = guarded(job, lambda job=job: anonymize_image(job, self.anonymizer, keep_metadata=self.keep_metadata),
                             overwrite=self.overwrite)
            text = json.dumps(report.to_dict())
            if report.ok:
                atomic_write(journal_entry(self.journal, job), lambda tmp, text=text: tmp.write_text(text))
            reports.append(text)
        return {"index": batch["index"], "report": reports}


def remove_partials(jobs: list[Job]) -> None:
    """Remove the hidden temporary files of the jobs' outputs: a worker killed mid-write cannot remove its own. Only
    while no worker of this run is writing (before Ray starts, after it stops)."""
    for job in jobs:
        for stale in partial_files(job.target):
            stale.unlink(missing_ok=True)


def anonymize_on_ray(jobs: list[Job], options: dict[str, Any], *, address: str | None, workers: int | None,
                     journal: Path, keep_metadata: bool = False, overwrite: bool = False,
                     on_file: Callable[[], None] | None = None) -> tuple[list[FileReport], int]:
    """Run ``jobs`` on Ray Data: ``address`` None starts Ray on this machine (``workers`` actors, default one per
    CPU), else joins that cluster (``auto``, ``ray://host:10001``). ``options``: keyword arguments of
    :class:`Anonymizer`. Returns (the reports in the order of ``jobs``, how many were already done).
    Raises :class:`SetupError` when Ray is not installed."""
    try:
        import ray
    except ImportError as err:
        raise SetupError("--ray needs Ray Data: pip install 'deepanon[cluster]'") from err
    journal.mkdir(parents=True, exist_ok=True)
    reports: dict[int, FileReport] = {}
    for i, job in enumerate(jobs):
        if (report := finished(journal, job)) is not None:
            reports[i] = report
            if on_file is not None:
                on_file()
    already = len(reports)
    todo = [i for i in range(len(jobs)) if i not in reports]
    remove_partials(jobs)
    if todo:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 logging_level=logging.ERROR)
        context = ray.data.DataContext.get_current()
        logging.getLogger("ray.data").setLevel(logging.ERROR)  # deepanon's own bar counts the files
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        try:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            actors = max(1, min(workers or cpus, len(todo)))
            threads = max(1, cpus // actors)
            items = [{"index": i, "source": str(jobs[i].source), "target": str(jobs[i].target)} for i in todo]
            results = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
                FileWorker, batch_size=FILES_PER_CALL, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=threads, fn_constructor_kwargs={"options": options, "journal": str(journal),
                                                         "keep_metadata": keep_metadata, "overwrite": overwrite,
                                                         "threads": threads})
            for row in results.iter_rows():
                reports[int(row["index"])] = FileReport(**json.loads(row["report"]))
                if on_file is not None:
                    on_file()
        finally:
            ray.shutdown()
            remove_partials(jobs)
    return [reports[i] for i in range(len(jobs))], already
