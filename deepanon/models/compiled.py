"""``torch.compile`` with a safe way back: a module whose compiled forward fails runs eagerly from then on."""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)
# compiling on a machine without CUDA warns "No CUDA runtime is found" on every run: nothing a user can act on
logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)


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
