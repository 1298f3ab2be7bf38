"""deepanon: find faces, remove them, and paint new ones with an IConv GAN generator."""

__version__ = "0.1.0"
