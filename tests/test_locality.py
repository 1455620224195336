"""What the default restorer does in one place depends only on the pixels within its margin."""

from __future__ import annotations

import numpy as np

from astrodeconv.forward import blur
from astrodeconv.methods import restore
from astrodeconv.psf import gaussian


def test_stars_beyond_the_margin_leave_a_region_s_background_alone():
    rng = np.random.default_rng(4)
    psf = gaussian(4.0)
    rows, cols = 160, 360
    sky = 100.0 + rng.standard_normal((rows, cols))
    stars = np.zeros((rows, cols))
    for _ in range(60):  # bright stars in the right third only
        stars[rng.integers(10, rows - 10), rng.integers(250, cols - 10)] = rng.uniform(1e3, 5e4)
    quiet = restore(sky, psf, "restorer-universal")
    busy = restore(sky + blur(stars, psf), psf, "restorer-universal")
    region = (slice(20, rows - 20), slice(20, 120))  # 130 px and more from the nearest star: beyond the margin
    rms = [float(np.std(image[region])) for image in (quiet, busy)]
    assert abs(rms[1] / rms[0] - 1) < 0.05, rms
