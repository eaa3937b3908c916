"""Autoencoders, VAEs and IWAEs with honest likelihoods (ELBO, IWAE bound, importance-sampled NLL)."""
