"""Radially averaged power spectra: where in frequency samples differ from real images.

The judges punish pixel noise far more than blur (docs/results.md scores real images noised
and blurred), so excess power at high spatial frequencies is the first thing to look for in
samples.
"""

import numpy as np

from genjax.core.plotting import pyplot

HIGH_BAND = 7  # radii >= this (half of Nyquist at 28 px and above) count as "high"


def radius_index(height: int, width: int) -> np.ndarray:
  """(H, W) integer radius of each FFT bin from the zero frequency (cycles per image)."""
  fy = np.fft.fftfreq(height) * height
  fx = np.fft.fftfreq(width) * width
  return np.rint(np.hypot(fy[:, None], fx[None, :])).astype(np.int64)


def radial_power(images_NxHxW) -> np.ndarray:
  """Mean power per integer radius 0..max, each image's mean removed (so radius 0 is 0).

  Power is |FFT|^2 / (H*W) summed over a ring's bins, so the radii sum to each image's
  sum of squared deviations from its mean (Parseval), averaged over images.
  """
  x = np.asarray(images_NxHxW, np.float64)
  x = x.mean(axis=-1) if x.ndim == 4 else x  # colour: the spectrum of the channels' mean
  x = x - x.mean(axis=(1, 2), keepdims=True)
  _, height, width = x.shape
  power_HxW = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0) / (height * width)
  radius = radius_index(height, width)
  return np.bincount(radius.ravel(), weights=power_HxW.ravel())


def high_band_ratio(samples_NxHxW, real_NxHxW) -> float:
  """Samples' power at radii >= HIGH_BAND over the real images' (1: same, >1: noisier)."""
  return float(radial_power(samples_NxHxW)[HIGH_BAND:].sum()
               / radial_power(real_NxHxW)[HIGH_BAND:].sum())


def spectrum_report(samples_NxHxW, real_NxHxW, samples_labels_N=None,
                    real_labels_N=None) -> dict:
  """Both spectra, their ratio, the high-band ratio, and that ratio per class where labelled."""
  power_samples = radial_power(samples_NxHxW)
  power_real = radial_power(real_NxHxW)
  report = {"radius": list(range(len(power_real))),
            "samples": power_samples.tolist(), "real": power_real.tolist(),
            "ratio": (power_samples[1:] / power_real[1:]).tolist(),  # from radius 1
            "high_band_ratio": high_band_ratio(samples_NxHxW, real_NxHxW)}
  if samples_labels_N is not None and real_labels_N is not None:
    samples_labels_N, real_labels_N = np.asarray(samples_labels_N), np.asarray(real_labels_N)
    report["class_high_band_ratio"] = [
        high_band_ratio(samples_NxHxW[samples_labels_N == k], real_NxHxW[real_labels_N == k])
        if (samples_labels_N == k).any() and (real_labels_N == k).any() else float("nan")
        for k in range(int(real_labels_N.max()) + 1)]
  return report


def format_summary(report: dict) -> str:
  """One line: the high-band ratio, and per class where the report has them."""
  line = f"power at radius >= {HIGH_BAND}, samples / real: {report['high_band_ratio']:.3f}"
  if "class_high_band_ratio" in report:
    line += "; by class: " + ", ".join(
        f"{k}: {r:.2f}" for k, r in enumerate(report["class_high_band_ratio"]))
  return line


def save_spectrum_plot(report: dict, path, title: str = "") -> None:
  """Log power per radius for samples and real images, and their ratio."""
  radius = np.asarray(report["radius"])
  plt = pyplot()
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
  top.semilogy(radius[1:], report["real"][1:], label="real (train subset)")
  top.semilogy(radius[1:], report["samples"][1:], label="samples")
  top.set_ylabel("power per ring")
  top.legend()
  bottom.plot(radius[1:], report["ratio"])
  bottom.axhline(1.0, color="gray", lw=0.8)
  bottom.axvspan(HIGH_BAND - 0.5, radius[-1] + 0.5, color="orange", alpha=0.15)
  bottom.set_ylabel("samples / real")
  bottom.set_xlabel("radius (cycles per image)")
  top.set_title(title or f"power spectra; high band (shaded) ratio "
                         f"{report['high_band_ratio']:.2f}")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
