"""The shared core every model family plugs into: the training loop, the steps-per-dispatch
runner, checkpoints, config checks, sharding, plotting and the entry points' plumbing."""
