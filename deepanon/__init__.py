"""deepanon: find faces, remove them, and paint new ones with an IConv GAN generator.

From Python: ``deepanon.Anonymizer`` (see :mod:`deepanon.api`; imported on first use, so that ``import deepanon``
stays light).
"""

__version__ = "0.1.0"
__all__ = ["Anonymizer", "FaceFinder", "SetupError", "__version__"]


def __getattr__(name: str):
    if name in ("Anonymizer", "FaceFinder", "SetupError"):
        from deepanon import api

        return getattr(api, name)
    raise AttributeError(f"module 'deepanon' has no attribute {name!r}")
