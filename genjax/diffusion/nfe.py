"""What a sample costs at each quality: the judge's FID of one checkpoint against the number of
function evaluations (NFE), sampler by sampler, with the real-data floor at the same count."""

import json
import time

from genjax.core import plotting, runs
from genjax.core.errors import field_error
from genjax.core.files import write_atomic
from genjax.data import image_sets
from genjax.diffusion import samplers
from genjax.diffusion.sampling import draws_of, settings_of
from genjax.eval import scoring


def check_nfes(nfes) -> list[int]:
  try:
    nfes = sorted({int(n) for n in nfes})
  except (TypeError, ValueError):
    raise field_error("nfe", f"must be integers separated by commas, got {nfes!r}") from None
  if not nfes or nfes[0] < 1:
    raise field_error("nfe", f"must be positive integers, got {nfes}")
  return nfes


def balanced_draw(draws, num: int, seed: int):
  """(images, labels or None): a conditional run's sample i is of class i mod num_classes."""
  labels = [i % draws.num_classes for i in range(num)] if draws.num_classes else None
  return draws.draw(num, seed, None), labels


def fid_by_nfe(workdir, nfes, sampler_names=None, num: int = 2000, seed: int = 0,
               guidance: float | None = None, step: int | None = None) -> dict:
  """The judge's metrics of `num` samples at each NFE (a sampler's NFE that do not make whole
  steps are skipped), for each sampler of the run's objective (or those named); writes
  nfe_fid.json and nfe_fid.png into the workdir. The same noise serves every NFE."""
  nfes = check_nfes(nfes)
  if not isinstance(num, int) or num < 2:
    raise field_error("num", f"must be an integer >= 2, got {num!r}")
  run = runs.restore(workdir, families=("diffusion",), step=step)
  config = run.config
  names = list(sampler_names or samplers.SAMPLERS[config.objective])
  guidance = settings_of(config, guidance=guidance).guidance  # checked before any sampling
  ref = scoring.reference_of(image_sets.DataSpec.of(config), config.judge)
  floor = scoring.reference_rows(ref, None, num, seed)["real_train"]["fid"]
  rows = []
  for name in names:
    for nfe in nfes:
      if nfe % samplers.EVALS_PER_STEP.get(name, 1):
        continue
      draws = draws_of(run, name, nfe, guidance)  # checks the sampler and guidance
      t0 = time.perf_counter()
      images, labels = balanced_draw(draws, num, seed)
      sample_s = time.perf_counter() - t0
      scores = scoring.score_images(images, ref, f"{name} {nfe} NFE", labels)
      rows.append({"sampler": name, "nfe": nfe, "fid": scores["fid"],
                   "ratio": scores["fid"] / floor,
                   "score": scores["score"], "recall": scores["recall"],
                   "precision": scores["precision"], "label_accuracy": scores.get("label_accuracy"),
                   "samples_per_s": num / sample_s})
  result = {"workdir": str(workdir), "step": run.step, "num": num, "seed": seed, "floor": floor,
            "guidance": guidance, "rows": rows}
  write_atomic(run.workdir / "nfe_fid.json", json.dumps(result, indent=2))
  save_plot(result, run.workdir / "nfe_fid.png",
            f"{config.objective} on {image_sets.short_name(config.dataset)}")
  return result


def save_plot(result: dict, path, title: str) -> None:
  plt = plotting.pyplot()
  fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
  for name in dict.fromkeys(r["sampler"] for r in result["rows"]):
    mine = [r for r in result["rows"] if r["sampler"] == name]
    ax.plot([r["nfe"] for r in mine], [r["fid"] for r in mine], "o-", label=name)
  ax.axhline(result["floor"], color="gray", linestyle=":", label="real data (floor)")
  ax.set(xscale="log", yscale="log", xlabel="function evaluations per sample",
         ylabel=f"judge's FID ({result['num']} samples)",
         title=f"{title}, step {result['step']}, guidance {result['guidance']:g}")
  ticks = sorted({r["nfe"] for r in result["rows"]})
  ax.minorticks_off()
  ax.set_xticks(ticks, [str(t) for t in ticks])
  ax.legend()
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def format_table(result: dict) -> str:
  lines = [f"{'sampler':>8} {'NFE':>5} {'FID':>8} {'x floor':>8} {'score':>7} {'recall':>7} "
           f"{'samples/s':>10}"]
  lines += [f"{r['sampler']:>8} {r['nfe']:>5d} {r['fid']:>8.2f} {r['ratio']:>8.2f} "
            f"{r['score']:>7.3f} {r['recall']:>7.3f} {r['samples_per_s']:>10.1f}"
            for r in result["rows"]]
  return "\n".join(lines)
