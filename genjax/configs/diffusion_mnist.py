"""Diffusion and flow matching on MNIST / Fashion-MNIST: one U-Net, two objectives.

Run:      python experiments/diffusion_mnist.py --workdir runs/diffusion   (the default recipe:
          class-conditional flow matching sized for a 2-core CPU)
Variants: --config=genjax/configs/diffusion_mnist.py:VARIANT with VARIANT one of
  flow         unconditional flow matching (velocity prediction, Heun sampler)
  ddpm         unconditional DDPM (noise prediction, cosine schedule, DDIM sampler)
  flow_cond    class-conditional flow matching with classifier-free guidance (the default)
  ddpm_cond    class-conditional DDPM with classifier-free guidance
  fashion      the default recipe on Fashion-MNIST
  gpu          a wider U-Net at 28x28, bigger batches and more steps, for one GPU:
               python experiments/diffusion_mnist.py --workdir runs/diffusion_gpu \
                   --config=genjax/configs/diffusion_mnist.py:gpu
  tiny         seconds-long runs for the tests (",tiny" shrinks any variant: "ddpm,tiny")
Options:  --config.sampler=ddpm|ddim (ddpm) or euler|heun (flow), --config.nfe=N,
          --config.guidance=G (conditional runs: 1 the conditional model, 0 the unconditional
          one, > 1 guided), --config.dataset=fashion_mnist, --config.num_steps=N
Own data: --config.dataset=folder:PATH (or npz:FILE, tfds:NAME), --config.image_size=32,
          --config.judge=J (a judge trained on it: experiments/train_classifier.py); the
          `cifar` and `celeba64` variants size the U-Net for 32x32 and 64x64 colour images (one GPU):
            python experiments/diffusion_mnist.py --workdir runs/diffusion_cifar \
                --config=genjax/configs/diffusion_mnist.py:cifar --config.judge=runs/judge_cifar
            python experiments/diffusion_mnist.py --workdir runs/diffusion_celeba64 \
                --config=genjax/configs/diffusion_mnist.py:celeba64
Sampling settings are the ones samples and evaluations use by default; sample.py and
evaluate.py take --sampler, --nfe and --guidance to change them.
"""

import ml_collections

from genjax.core.config import apply_variant

GPU_32 = dict(channels=(128, 256, 256), blocks=2, batch_size=128, num_steps=100_000,
              learning_rate=2e-4, eval_interval=10_000, checkpoint_interval=10_000,
              sample_interval=5_000, ema_decay=0.9999, eval_num=10_000, eval_batch=1_000)
FLOW = dict(objective="flow", sampler="heun", t_sampling="logit_normal")
DDPM = dict(objective="ddpm", sampler="ddim", t_sampling="uniform")
VARIANTS = {
    "flow": dict(FLOW, conditional=False, guidance=1.0),
    "ddpm": dict(DDPM, conditional=False, guidance=1.0),
    "flow_cond": dict(FLOW),
    "ddpm_cond": dict(DDPM),
    "fashion": dict(dataset="fashion_mnist"),
    # One GPU: a U-Net of the usual size for 28x28, larger batches, many more steps.
    "gpu": dict(patch=1, channels=(64, 128, 256), blocks=2, batch_size=256, num_steps=50_000,
                learning_rate=2e-4, eval_interval=10_000, checkpoint_interval=10_000,
                sample_interval=5_000, ema_decay=0.9999, eval_num=10_000, eval_batch=2_000),
    # One GPU, CIFAR-10 (32x32 RGB, 10 classes): a 32 -> 16 -> 8 U-Net.
    "cifar": dict(GPU_32, dataset="tfds:cifar10", patch=1),
    # One GPU, CelebA at 64x64 (no classes): the same U-Net on 2x2 blocks (32 -> 16 -> 8).
    "celeba64": dict(GPU_32, dataset="tfds:celeb_a", image_size=64, patch=2, conditional=False,
                     guidance=1.0, eval_interval=0),
}
# One level at 14x14: the tests' compile time is most of their time.
TINY = dict(patch=2, channels=(8,), blocks=1, heads=2, groups=4, batch_size=8, num_steps=6,
            warmup_steps=2, sample_interval=3, checkpoint_interval=3, eval_interval=0,
            eval_num=100, eval_batch=100, nfe=4, progress=False)  # the grid's batch: one compile


def get_config(variant: str = "") -> ml_collections.ConfigDict:
  """variant: "", a name of VARIANTS, "tiny", or "NAME,tiny"."""
  c = ml_collections.ConfigDict()
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

  c.objective = "flow"  # flow: velocity on the straight path; ddpm: noise, cosine schedule
  c.t_sampling = "logit_normal"  # training times: uniform | logit_normal
  c.conditional = True  # the label conditions the U-Net; label_dropout trains the null label
  c.label_dropout = 0.1  # conditional: share of labels replaced by the null label

  c.patch = 2  # 2: the U-Net sees 2x2 pixel blocks as vectors and starts at 14x14 (a third
  # of the FLOPs of a 28x28 start of the same quality on a CPU); 1: it starts at 28x28
  c.channels = (64, 64)  # U-Net widths from side / patch, halved at each next one (attention
  # at the last): 28 / 2 = 14, then 7
  c.blocks = 1  # residual blocks per resolution on the way down (one more on the way up)
  c.heads = 4  # attention heads at the lowest resolution
  c.groups = 8  # GroupNorm groups; must divide every width

  c.batch_size = 64
  c.num_devices = 0  # data-parallel over this many devices (0: all); batch_size must divide
  c.num_steps = 3000
  c.learning_rate = 1e-3
  c.lr_schedule = "constant"  # constant (after the warmup) | warmup_cosine (to final_lr_fraction)
  c.warmup_steps = 200  # linear warmup from 0
  c.final_lr_fraction = 0.0
  c.beta1 = 0.9
  c.beta2 = 0.999
  c.adam_eps = 1e-8
  c.grad_clip = 1.0  # global-norm clipping of the gradients (0: off)
  c.ema_decay = 0.999  # > 0: samples and evaluations use a moving average of the weights

  # How samples and evaluations are drawn (not training: change them on any run).
  c.sampler = "heun"  # ddpm: ddpm (ancestral) | ddim; flow: euler | heun
  c.nfe = 16  # network evaluations per sample (heun: two per step, so even)
  c.guidance = 1.0  # conditional: 1 the conditional model, 0 the unconditional, > 1 guided

  c.log_interval = 1  # rows of metrics.jsonl
  c.print_interval = 0  # > 0: print the loss every this many steps
  c.sample_interval = 500  # images/<step>.png (10x10, row k: class k if conditional)
  c.checkpoint_interval = 500
  c.keep_checkpoints = 3
  c.eval_interval = 1000  # the judge's FID etc. on a fixed noise set (0: off); best kept
  c.eval_num = 1000  # samples per evaluation (class-balanced if conditional)
  c.eval_batch = 500  # samples per sampler call
  c.steps_per_dispatch = 100  # most steps run on device between host wake-ups
  c.progress = True

  return apply_variant(c, variant, VARIANTS, TINY)
