"""The detector's input check is a raised error, so it holds under ``python -O`` too."""

import subprocess
import sys

import numpy as np
import pytest

from deepanon.detection.base import check_image


def test_check_image_names_what_is_wrong():
    with pytest.raises(TypeError, match="numpy array"):
        check_image([[0, 0, 0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="uint8"):
        check_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="HxWx3"):
        check_image(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        check_image(np.zeros((0, 4, 3), np.uint8))
    check_image(np.zeros((4, 4, 3), np.uint8))


def test_check_image_fires_under_python_O():
    code = ("import numpy as np; from deepanon.detection.base import check_image; "
            "check_image(np.zeros((4, 4), np.uint8))")
    run = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True)
    assert run.returncode == 1 and "ValueError: expected HxWx3 RGB" in run.stderr, run.stderr
