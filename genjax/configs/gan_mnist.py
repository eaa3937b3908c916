"""GAN recipes on MNIST / Fashion-MNIST and any image data: the tutorial's MLP GAN and the
DCGAN family.

Run:      python experiments/gan_mnist.py --workdir runs/gan            (the tutorial)
Recipes:  --config=genjax/configs/gan_mnist.py:RECIPE with RECIPE one of
          dcgan, lsgan, hinge_sn, wgan_gp, r1, cgan, cgan_fashion (add ",tiny" for the test size);
          32x32 colour: dcgan_cifar, cgan_cifar; 64x64 colour: dcgan_64, cgan_64
Variants: --config.dataset=fashion_mnist, --config.d_update=joint, --config.num_steps=30000,
          --config.ema_decay=0 (EMA off), --config.conditional=True (any recipe)
Own data: --config.dataset=folder:PATH (or npz:FILE, tfds:NAME), --config.image_size=32,
          --config.judge=J (a judge trained on it: experiments/train_classifier.py)
Figures of every recipe, with the commands that reproduce them: docs/recipes.md, docs/results.md.
"""

import ml_collections

from genjax.core.config import apply_variant

# Overrides of the tutorial's config, one dict per recipe. All DCGAN recipes train on batches
# of 64 with one joint D update per G update and sample from an EMA of G's weights, with
# optax's Adam (as the papers' PyTorch code; the tutorial's is Keras').
DCGAN = dict(arch="dcgan", g_channels=(64, 32), d_channels=(32, 64), batch_size=64,
             d_update="joint", ema_decay=0.999, num_steps=25000, eval_interval=5000,
             checkpoint_interval=5000, sample_interval=1000, adam_form="optax")
RECIPES = {
    "mlp": {},
    "dcgan": dict(DCGAN),  # Radford et al. 2016: non-saturating BCE
    "lsgan": dict(DCGAN, loss="lsgan"),  # Mao et al. 2017
    "hinge_sn": dict(DCGAN, loss="hinge", spectral_norm=True),  # Miyato et al. 2018
    # Gulrajani et al. 2017: five critic steps per G step, Adam(1e-4, 0, 0.9)
    "wgan_gp": dict(DCGAN, loss="wgan", gp_weight=10.0, n_critic=5, learning_rate=1e-4,
                    beta1=0.0, beta2=0.9, num_steps=8000),
    "r1": dict(DCGAN, r1_weight=1.0),  # Mescheder et al. 2018, gamma tuned for 28x28
    # One-hot G input, class-conditional BatchNorm in G and a projection D (Miyato & Koyama
    # 2018), hinge loss at twice the rate, a wider G ending in a full-size 3x3 conv, a third D
    # layer, MSGAN's diversity term.
    "cgan": dict(DCGAN, conditional=True, loss="hinge", learning_rate=4e-4, g_channels=(96, 48),
                 g_refine=24, g_class_bn=True, d_channels=(32, 64, 128), mode_seeking=0.15,
                 num_steps=12000, eval_interval=4000, checkpoint_interval=4000),
}
# The best Fashion-MNIST recipe: cgan with a wider G, a [1, 2, 1] blur after each G
# upsampling (against checkerboard artefacts), ProGAN's minibatch-stddev channel in D (against
# collapse) and a slower EMA; best used with its last checkpoints averaged
# (experiments/average_checkpoints.py), then sampled with DRS (experiments/fit_drs.py).
RECIPES["cgan_fashion"] = dict(RECIPES["cgan"], dataset="fashion_mnist", g_channels=(128, 64),
                               g_refine=32, g_blur=True, d_mbstd=4, ema_decay=0.9999,
                               num_steps=48000)

# Colour recipes, the DCGAN paper's shapes: G from 4x4 (three doublings to 32, four to 64), D
# back down to 4x4. Not measured yet; on one GPU:
#   python experiments/gan_mnist.py --config=genjax/configs/gan_mnist.py:cgan_cifar \
#       --workdir runs/cgan_cifar --config.judge=runs/judge_cifar
# (the judge: python experiments/train_classifier.py --dataset tfds:cifar10 \
#       --config=genjax/configs/classifier.py:cifar --workdir runs/judge_cifar)
#   python experiments/gan_mnist.py --config=genjax/configs/gan_mnist.py:dcgan_64 \
#       --workdir runs/celeba64        (CelebA has no classes: grids and curves, no judge)
CIFAR = dict(dataset="tfds:cifar10", g_channels=(256, 128, 64), d_channels=(64, 128, 256),
             num_steps=60000, eval_interval=5000, checkpoint_interval=5000)
RECIPES["dcgan_cifar"] = dict(DCGAN, **CIFAR)
RECIPES["cgan_cifar"] = dict(RECIPES["cgan"], **CIFAR, g_refine=32)
SIDE_64 = dict(image_size=64, g_channels=(512, 256, 128, 64), d_channels=(64, 128, 256, 512),
               batch_size=128, num_steps=60000, eval_interval=5000, checkpoint_interval=5000)
RECIPES["dcgan_64"] = dict(DCGAN, **SIDE_64, dataset="tfds:celeb_a")
RECIPES["cgan_64"] = dict(RECIPES["cgan"], **SIDE_64, dataset="tfds:stl10", g_refine=32)

TINY = dict(num_steps=6, batch_size=8, latent_dim=8, g_hidden=(16, 32), d_hidden=(32, 16),
            g_channels=(8, 4), d_channels=(4, 8), sample_interval=3, checkpoint_interval=3,
            eval_interval=0, eval_num=100, progress=False)  # tests turn eval on where checked


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "", "tiny", a recipe, or "recipe,tiny"."""
  c = ml_collections.ConfigDict()
  c.model = "gan"
  c.dataset = "mnist"  # fashion_mnist, folder:PATH, npz:FILE or tfds:NAME[:SPLIT]
  c.data_dir = ""  # folder with mnist/ and fashion-mnist/ gz files; else $GENJAX_DATA_DIR, else TFDS
  c.image_size = 0  # >0: every image resized (shorter side) and centre-cropped to S x S on load
  c.test_fraction = 0.1  # held out as the test split by data without one of its own
  c.device_data_mb = 2048.0  # data up to this size (MB) sits on the devices; larger streams
  c.judge = ""  # a judge's workdir (train_classifier.py); "": MNIST's or Fashion's shipped one
  # Set from the data when a run starts (its checkpoints record them): leave them unset.
  c.image_shape = None  # (H, W, C)
  c.num_classes = None  # 0: unlabelled
  c.class_names = None
  c.seed = 0

  c.num_steps = 2000  # the tutorial's "epochs" are single iterations
  c.batch_size = 32
  c.latent_dim = 100
  c.arch = "mlp"  # mlp: the tutorial's; dcgan: convolutional
  c.g_hidden = (256, 512, 1024)  # mlp widths
  c.d_hidden = (512, 256)
  c.g_channels = (128, 64)  # dcgan: G's channels at 7x7 and 14x14
  c.d_channels = (64, 128)  # dcgan: D's channels at 14x14, 7x7 (and 4x4 if a third)
  c.bn_momentum = 0.8
  c.g_refine = 0  # dcgan: >0 upsamples to this many channels, then a 28x28 3x3 conv
  c.g_class_bn = False  # dcgan, conditional: per-class BatchNorm scale and offset in G
  c.d_mbstd = 0  # dcgan: >0, a minibatch-stddev channel in D over groups of this size
  c.g_blur = False  # dcgan: [1, 2, 1] low-pass after each G upsampling (no checkerboard)
  c.d_update = "keras"  # keras: the tutorial's loop (two D updates); joint: one D update
  c.conditional = False  # G and D see the class label (the tutorial's one-hot vectors)

  c.loss = "nsgan"  # nsgan (the tutorial's BCE), lsgan, hinge, wgan
  c.gp_weight = 0.0  # WGAN-GP penalty weight (joint D update only)
  c.r1_weight = 0.0  # R1 penalty gamma (joint D update only)
  c.spectral_norm = False  # spectrally normalized D layers
  c.n_critic = 1  # D updates per G update
  c.mode_seeking = 0.0  # >0: weight of MSGAN's mode-seeking term in G's loss
  c.consistency_weight = 0.0  # >0: bCR, D's logits kept equal under random shifts
  c.consistency_shift = 2  # bCR's shifts: up to this many pixels each way
  c.ema_decay = 0.0  # >0: sample and evaluate with an EMA of G's weights

  c.compute_dtype = "float32"  # bfloat16: mixed precision (float32 params/optimizer), GPU/TPU
  c.num_devices = 0  # data-parallel over this many devices (0: all); batch_size must divide

  c.learning_rate = 2e-4
  c.d_learning_rate = 0.0  # >0: D's own learning rate (TTUR); 0: learning_rate
  c.lr_schedule = "constant"  # or linear: decays both rates to 0 at num_steps
  c.lr_decay_fraction = 1.0  # linear: the decay spans this last fraction of the run; a
  # constant-rate checkpoint resumes with a tail that starts at or after its step
  c.beta1 = 0.5
  c.beta2 = 0.999
  c.adam_eps = 1e-7  # Keras' Adam epsilon
  c.adam_form = "keras"  # where eps enters: keras (the tutorial's), optax (= PyTorch)

  c.log_interval = 1  # rows of metrics.jsonl (the tutorial prints every iteration)
  c.print_interval = 0  # >0: print the tutorial's log line every this many iterations
  c.sample_interval = 200  # 5x5 grid PNG (10x10 by class if conditional), step 0 included
  c.grid_size = 5
  c.checkpoint_interval = 500
  c.keep_checkpoints = 3
  c.eval_interval = 5000  # judge's FID etc. on a fixed noise set (0: off); best checkpoint kept
  c.eval_num = 2000
  c.steps_per_dispatch = 500  # most iterations run on device between host wake-ups
  c.progress = True

  apply_variant(c, variant, RECIPES, TINY)
  if "tiny" in variant.split(","):
    c.g_refine = min(c.g_refine, 4)  # a full-size conv is most of a tiny G's time
  return c
