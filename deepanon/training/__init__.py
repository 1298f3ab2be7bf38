"""Training of the Config E inpainting GAN: data, losses (paper §3.2), the loop, checkpoints and DDP."""
