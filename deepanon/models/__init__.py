"""IConv inpainting models (Hukkelås et al., GCPR 2020, Config E)."""

from deepanon.models.config import ModelConfig
from deepanon.models.discriminator import Discriminator
from deepanon.models.generator import Generator, seeded_latent, truncated_latent
from deepanon.models.iconv import ImputedConv2d

__all__ = ["Discriminator", "Generator", "ImputedConv2d", "ModelConfig", "seeded_latent", "truncated_latent"]
