"""Learning-rate schedules: optax ones and the decay window applied outside the optimizer."""

import numpy as np
import pytest

from genjax.core import schedules


@pytest.mark.parametrize("fraction,window,expected", [
    (1.0, (0, 8), [8, 7, 6, 5, 4, 3, 2, 1]),  # linear from the first step
    (0.25, (6, 8), [8, 8, 8, 8, 8, 8, 8, 4])])  # constant, then the last quarter decays
def test_the_window_decays_over_the_last_fraction(fraction, window, expected):
  assert schedules.decay_window(8, fraction) == window
  rates = 8 * np.asarray(schedules.window_scale(window, np.arange(8)))
  np.testing.assert_allclose(rates, expected, rtol=1e-6)
  assert float(schedules.window_scale(window, 8)) == 0.0  # past the end: no more updates
  np.testing.assert_array_equal(schedules.window_scale(None, np.arange(5)), np.ones(5))


def test_same_rates_before_compares_only_the_steps_taken():
  assert schedules.same_rates_before(None, (6, 8), 7)  # steps 0..6 at the full rate
  assert not schedules.same_rates_before(None, (6, 8), 8)
  assert schedules.same_rates_before((6, 8), (6, 8), 8)
  assert not schedules.same_rates_before((6, 8), (6, 10), 8)


def test_optax_schedules():
  assert float(schedules.optax_schedule("constant", 0.1, 100)(50)) == pytest.approx(0.1)
  cosine = schedules.optax_schedule("cosine", 1.0, 100, final_fraction=0.01)
  assert float(cosine(0)) == 1.0 and float(cosine(100)) == pytest.approx(0.01)
  warm = schedules.optax_schedule("warmup_cosine", 1.0, 100, final_fraction=1e-3,
                                  warmup_fraction=0.1)
  assert float(warm(0)) == 0.0 and float(warm(10)) == pytest.approx(1.0)
  assert float(warm(100)) == pytest.approx(1e-3)
  burda = schedules.optax_schedule("burda", 1.0, 3280)
  rates = sorted({round(float(r), 6) for r in np.asarray(burda(np.arange(3280)))}, reverse=True)
  assert len(rates) == schedules.BURDA_STAGES
  assert rates[1] == pytest.approx(10 ** (-1 / 7), rel=1e-5)
  with pytest.raises(ValueError, match="unknown schedule"):
    schedules.optax_schedule("step", 1.0, 10)
