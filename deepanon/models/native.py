"""C kernels built with the machine's C compiler at first use, as inductor builds its own, and called through ctypes.

A kernel is built once per process into a temporary folder (a fraction of a second), for this machine's CPU; where no
compiler can build it, :func:`depthwise_weight_gradient_library` is None and the caller keeps its PyTorch path.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

DEPTHWISE_SOURCE = Path(__file__).with_name("depthwise_weight_gradient.c")
# tried in order: this CPU's widest vectors and OpenMP, then OpenMP alone (a compiler without the x86 options), then
# a single thread
FLAG_SETS = (("-march=native", "-mprefer-vector-width=512", "-fopenmp"), ("-fopenmp",), ())
BUILD_SECONDS = 120


def c_compiler() -> str | None:
    """The path of the C compiler: ``$CC``, else ``cc``, as found on the PATH; None without one."""
    return shutil.which(os.environ.get("CC", "cc"))


def build(source: Path) -> ctypes.CDLL | None:
    """Compiles ``source`` into a shared library with :func:`c_compiler` and loads it; None (logged) when no flag set
    of :data:`FLAG_SETS` builds it or no compiler is found."""
    compiler = c_compiler()
    if compiler is None:
        log.info("no C compiler found: %s is not built", source.name)
        return None
    with tempfile.TemporaryDirectory(prefix="deepanon-native-") as folder:
        library = Path(folder) / f"{source.stem}.so"
        for flags in FLAG_SETS:
            command = [compiler, "-O3", "-shared", "-fPIC", *flags, str(source), "-o", str(library)]
            try:
                result = subprocess.run(command, capture_output=True, text=True, timeout=BUILD_SECONDS)
            except (OSError, subprocess.TimeoutExpired) as err:
                log.info("building %s failed: %s", source.name, err)
                return None
            if result.returncode == 0:
                # the loaded library stays mapped after its file is removed with the folder
                return ctypes.CDLL(str(library))
            log.info("building %s with %s failed: %s", source.name, " ".join(flags), result.stderr.strip())
    return None


@functools.cache
def depthwise_weight_gradient_library() -> ctypes.CDLL | None:
    """The kernel of ``depthwise_weight_gradient.c``, built once per process; None where it cannot be built."""
    library = build(DEPTHWISE_SOURCE)
    if library is not None:
        library.depthwise_weight_gradient.restype = ctypes.c_int
        library.depthwise_weight_gradient.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int] * 6
    return library
