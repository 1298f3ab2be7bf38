"""DDP on CPU: two gloo processes under torchrun end with identical weights, and only rank 0 writes the run folder."""

import os
import subprocess
import sys
from pathlib import Path

import torch

from deepanon.training.checkpoint import latest_checkpoint, load_checkpoint


def test_two_processes_stay_in_sync(fdf_root, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(worker), str(fdf_root), str(tmp_path)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for part in ("generator", "discriminator", "ema"):
        for key, value in ranks[0][part].items():
            assert torch.equal(ranks[1][part][key], value), (part, key)
    state = load_checkpoint(latest_checkpoint(tmp_path))
    assert state["images_seen"] == 12 and state["world_size"] == 2
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 3  # one writer
    # training changed the weights: the test is not comparing two untouched initialisations
    assert any(not torch.equal(state["generator"][k], state["ema"][k]) for k in state["generator"])
