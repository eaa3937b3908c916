"""Learning-rate schedules as factors of the iteration."""

import numpy as np
import pytest

from genjax import schedules
from genjax.configs.gan_mnist import get_config


@pytest.mark.parametrize("fraction,window,expected", [
    (1.0, (0, 8), [8, 7, 6, 5, 4, 3, 2, 1]),  # linear from the first iteration
    (0.25, (6, 8), [8, 8, 8, 8, 8, 8, 8, 4])])  # constant, then the last quarter decays
def test_linear_schedule_decays_over_the_last_fraction(fraction, window, expected):
  config = get_config()
  config.update(num_steps=8, lr_schedule="linear", lr_decay_fraction=fraction)
  assert schedules.lr_window(config) == window
  rates = 8 * np.asarray(schedules.lr_scale(window, np.arange(8)))
  np.testing.assert_allclose(rates, expected, rtol=1e-6)
  assert float(schedules.lr_scale(window, 8)) == 0.0  # past the end: no more updates


def test_constant_schedule_has_no_window():
  assert schedules.lr_window(get_config()) is None
  np.testing.assert_array_equal(schedules.lr_scale(None, np.arange(5)), np.ones(5))


def test_same_rates_before_compares_only_the_steps_taken():
  assert schedules.same_rates_before(None, (6, 8), 7)  # steps 0..6 at the full rate
  assert not schedules.same_rates_before(None, (6, 8), 8)
  assert schedules.same_rates_before((6, 8), (6, 8), 8)
  assert not schedules.same_rates_before((6, 8), (6, 10), 8)
