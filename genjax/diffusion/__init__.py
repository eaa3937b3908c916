"""Diffusion and flow matching: a U-Net, DDPM and flow objectives, their samplers, likelihood."""
