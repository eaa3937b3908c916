"""VAEs on MNIST: the classic one-stochastic-layer benchmark (200-200-50, Burda et al. 2016).

Run:      python experiments/vae_mnist.py --workdir runs/vae
Variants: --config=genjax/configs/vae_mnist.py:VARIANT with VARIANT one of
  ""            classic VAE: MLP 200-200 tanh, 50 latents, Bernoulli decoder, dynamic binarization
  iwae50        the same network trained on the IWAE k=50 bound
  flax_example  google/flax examples/vae: 500 relu units, 20 latents, batch 128, Adam 1e-3,
                10 epochs
  ae            a deterministic autoencoder (no prior: no samples, no ELBO)
  latent2       a 2-D latent, for the manifold grid and the encoded test set scatter
  conv          the small convolutional encoder/decoder
  conv_cifar    32x32 colour (CIFAR-10 by default): three conv layers, a Gaussian decoder with a
                learned std on the raw pixels
  conv_64       the same at 64x64 (CelebA by default), four conv layers
  tiny          seconds-long runs for the tests (",tiny" shrinks any variant: "conv,tiny")
Options:  --config.model=vae|iwae|ae --config.decoder=gaussian --config.binarization=static|none
          --config.dataset=fashion_mnist --config.beta=4 --config.num_epochs=100
          --config.eval_num=1000 (test subset) --config.eval_nll_k=0 (skip the k=5000 NLL)
Conditional (class-conditional generation, any variant):
  python experiments/vae_mnist.py --config.conditional=True
  q(z|x,y) and p(x|z,y) see the one-hot label y (next to the flattened image or the conv
  features, and next to z); the test figures are then bounds on log p(x|y) given the true test
  labels (eval.json says "conditional": true), and samples_by_class.png shows row k = label k.

Published-scale runs: --config.num_epochs=3280 (the bounds the literature reports come after
that many epochs), and on a GPU --config.eval_batch=100 --config.eval_k_chunk=5000 for the
evaluation. Measured figures of every variant: docs/results.md, "VAE / IWAE / AE likelihoods".
"""

import ml_collections

from genjax.core.config import apply_variant

TRAIN_SIZE = 60_000  # MNIST and Fashion-MNIST training sets

VARIANTS = {
    "iwae50": dict(model="iwae", iwae_k=50),
    # google/flax's examples/vae, which trains on TFDS binarized_mnist: one fixed draw
    "flax_example": dict(hidden=(500,), activation="relu", latent_dim=20, batch_size=128,
                         num_epochs=10.0, adam_eps=1e-8, learning_rate=1e-3,
                         lr_schedule="constant", binarization="static", eval_nll_k=0),
    "ae": dict(model="ae"),
    "latent2": dict(latent_dim=2),
    "conv": dict(arch="conv", hidden=(200,), activation="relu"),
    # Not measured yet; on one GPU: python experiments/vae_mnist.py
    #   --config=genjax/configs/vae_mnist.py:conv_cifar --workdir runs/vae_cifar
    "conv_cifar": dict(arch="conv", conv_channels=(32, 64, 128), hidden=(512,),
                       activation="relu", latent_dim=128, batch_size=128, num_epochs=50.0,
                       binarization="none", decoder="gaussian", learn_decoder_std=True,
                       dataset="tfds:cifar10", eval_nll_k=0),
}
VARIANTS["conv_64"] = dict(VARIANTS["conv_cifar"], conv_channels=(32, 64, 128, 256),
                           dataset="tfds:celeb_a", image_size=64, num_epochs=20.0)
TINY = dict(hidden=(16,), latent_dim=2, batch_size=8, num_steps=6, iwae_k=3, sample_interval=3,
            checkpoint_interval=3, log_interval=1, grid_size=4, progress=False, eval_num=40,
            eval_iwae_k=3, eval_nll_k=12, eval_batch=20, eval_k_chunk=6)


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "", a name of VARIANTS, "tiny", or "NAME,tiny"."""
  c = ml_collections.ConfigDict()
  c.model = "vae"  # vae (ELBO) | iwae (k-sample bound) | ae (deterministic autoencoder)
  c.conditional = False  # True: q(z|x,y), p(x|z,y) with one-hot labels y; figures on log p(x|y)
  c.dataset = "mnist"  # fashion_mnist, folder:PATH, npz:FILE or tfds:NAME[:SPLIT]
  c.data_dir = ""  # mnist/ and fashion-mnist/ gz files; else $GENJAX_DATA_DIR, else TFDS
  c.image_size = 0  # >0: every image resized (shorter side) and centre-cropped to S x S on load
  c.test_fraction = 0.1  # held out as the test split by data without one of its own
  c.device_data_mb = 2048.0  # data up to this size (MB) sits on the devices; larger streams
  c.judge = ""  # a judge's workdir for evaluate.py (train_classifier.py); "": the shipped one
  # Set from the data when a run starts (its checkpoints record them): leave them unset.
  c.image_shape = None  # (H, W, C)
  c.num_classes = None  # 0: unlabelled
  c.class_names = None
  c.seed = 0
  c.binarization = "dynamic"  # dynamic: fresh bits per batch | static: one fixed draw | none
  c.binarize_seed = 0  # the fixed Bernoulli draw of static training sets and of every test set

  c.arch = "mlp"  # mlp | conv
  c.hidden = (200, 200)  # deterministic layers of encoder (and, mirrored, decoder)
  c.activation = "tanh"  # tanh | softplus | relu
  c.conv_channels = (16, 32)  # conv only: stride-2 layers 28 -> 14 -> 7 (sides: multiples of 2^k)
  c.latent_dim = 50
  c.decoder = "bernoulli"  # bernoulli (logits) | gaussian (sigmoid means)
  c.decoder_std = 0.1  # gaussian: the fixed std, or the learned one's start
  c.learn_decoder_std = False
  c.beta = 1.0  # KL weight of the vae objective (beta-VAE); the IWAE bound ignores it
  c.iwae_k = 50  # samples of the iwae training bound

  c.batch_size = 100
  c.num_devices = 0  # data-parallel over this many devices (0: all); batch_size must divide
  c.num_epochs = 100.0  # epochs of the training images (batches drawn with replacement)
  c.num_steps = 0  # > 0 overrides num_epochs
  c.learning_rate = 1e-3  # peak (a higher one wins short runs and loses long ones)
  c.lr_schedule = "cosine"  # constant | cosine (to final_lr_fraction) | burda (3^i stages)
  c.final_lr_fraction = 0.01
  c.beta1 = 0.9
  c.beta2 = 0.999
  c.adam_eps = 1e-4  # Burda et al.'s; also keeps early steps of tiny gradients bounded

  c.eval_num = 10_000  # test examples for the final evaluation (the first ones; all by default)
  c.eval_iwae_k = 50  # the k of the reported IWAE bound
  c.eval_nll_k = 5000  # samples of the importance-sampled log p(x); 0 skips it
  c.eval_batch = 20  # test images per dispatch
  c.eval_k_chunk = 1000  # samples per decoder pass (eval_batch * eval_k_chunk rows in memory)
  c.eval_interval = 0  # > 0: test neg ELBO and IWAE bound on eval_interval_num examples
  c.eval_interval_num = 1000

  c.log_interval = 100  # rows of metrics.jsonl
  c.sample_interval = 30_000  # prior-sample grid PNG in images/, step 0 and the end included
  c.grid_size = 10
  c.checkpoint_interval = 6000
  c.keep_checkpoints = 3
  c.steps_per_dispatch = 1000  # most steps run on device between host wake-ups
  c.progress = True

  return apply_variant(c, variant, VARIANTS, TINY)
