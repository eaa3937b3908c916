"""GANs: the tutorial's MLP GAN and the DCGAN model zoo (losses, penalties, EMA, DRS)."""
