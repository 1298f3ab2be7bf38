"""Run under torchrun by test_ddp.py: train a tiny model, then every rank saves its own weights for comparison."""

import sys
from pathlib import Path

import torch

from deepanon.training import distributed, loop
from deepanon.training.config import TrainConfig

data, out = sys.argv[1], Path(sys.argv[2])
cfg = TrainConfig(data=data, out=str(out), image_size=32, width=0.25, batch_size=4, images=12, workers=0,
                  device="cpu", quiet=True, log_every=4)
process = distributed.start(cfg.device)
assert process.world_size == 2
models = loop.run(cfg, process)
torch.save({"generator": models.generator.state_dict(), "discriminator": models.discriminator.state_dict(),
            "ema": models.ema.state_dict()}, out / f"rank{process.rank}.pt")
distributed.stop(process)
