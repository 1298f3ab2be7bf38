"""``torch.compile`` with a safe way back: a module whose compiled forward fails runs eagerly from then on."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)
# compiling on a machine without CUDA warns "No CUDA runtime is found" on every run: nothing a user can act on
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)

TRAINING_VECTOR_BITS = 256


def narrow_cpu_vectors() -> None:
    """Have inductor write 256-bit rather than AVX-512 CPU code for this process (without AVX-512: no change).

    torch 2.14's AVX-512 code for a sum over the channels of a channels_last bf16 tensor read twice beside a
    contiguous fp32 one returns NaN (pixel norm's backward in a generator of 64² and more; its 256-bit code is right;
    ``tests/models/test_compiled.py``). The compiled 128² training step still runs 1.6× the eager one (NOTES).
    """
    from torch._inductor import config, cpu_vec_isa  # imported on use: loading inductor takes 0.8 s

    if cpu_vec_isa.pick_vec_isa().bit_width() > TRAINING_VECTOR_BITS:
        config.cpp.simdlen = TRAINING_VECTOR_BITS


class CompiledForward:
    """Calls ``torch.compile(module)``; when compiling or running the graph raises (no C++ compiler, an unsupported
    platform or op), warns once, naming ``what``, and calls the eager ``module`` instead from then on."""

    def __init__(self, module: nn.Module, what: str) -> None:
        self.module = module
        self.what = what
        self.compiled: Any = torch.compile(module, dynamic=False)

    @property
    def active(self) -> bool:
        """True until the compiled forward has failed once."""
        return self.compiled is not None

    def __call__(self, *args: torch.Tensor) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args)
            except Exception as err:  # noqa: BLE001 - inductor can fail in many ways; eager is always available
                log.warning("torch.compile failed (%s: %s); running the %s eagerly", type(err).__name__, err, self.what)
                self.compiled = None
        return self.module(*args)
