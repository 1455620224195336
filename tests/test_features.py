"""Feature maps of cnn3's hidden layers and their correlation with stars and extended emission."""

import numpy as np
import pytest
import torch

from astrodeconv.errors import InputError
from astrodeconv.experiments.features import component_correlations, feature_maps, split_components
from astrodeconv.experiments.plots import feature_maps_figure
from astrodeconv.nn.models import create_model


def _sky(shape=(64, 64), seed=0):
    """A smooth galaxy plus a few one-pixel stars."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    galaxy = 0.5 * np.exp(-((yy - 30) ** 2 + (xx - 34) ** 2) / (2 * 12.0**2))
    stars = np.zeros(shape)
    rng = np.random.default_rng(seed)
    stars[rng.integers(4, shape[0] - 4, 12), rng.integers(4, shape[1] - 4, 12)] = 0.4
    return galaxy + stars, stars, galaxy


def _delta_cnn3():
    """A cnn3 whose layer-1 map 0 and layer-2 map 0 copy the input at their stated offsets."""
    model = create_model("cnn3")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv, centre in zip(convs[:2], (4, 3)):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[0, 0, centre, centre] = 1.0
    return model


def test_maps_are_aligned_with_the_input_at_their_offset():
    image = np.random.default_rng(1).random((40, 37)).astype(np.float32)
    (first, off1), (second, off2) = feature_maps(_delta_cnn3(), image)
    assert (off1, off2) == (4, 7)
    assert first.shape == (64, 31, 28) and second.shape == (16, 26, 23)
    np.testing.assert_allclose(first[0], image[off1:off1 + 31, off1:off1 + 28], atol=1e-6)
    np.testing.assert_allclose(second[0], image[off2:off2 + 26, off2:off2 + 23], atol=1e-6)


def test_correlations_tell_stars_from_extended_emission():
    truth, stars, galaxy = _sky()
    point, extended = split_components(truth)
    assert np.corrcoef(point.ravel(), stars.ravel())[0, 1] > 0.95
    assert np.corrcoef(extended.ravel(), galaxy.ravel())[0, 1] > 0.99
    offset = 5
    window = (slice(offset, offset + 50), slice(offset, offset + 50))
    maps = np.stack([stars[window], galaxy[window], np.ones((50, 50))])
    (rows,) = component_correlations([(maps, offset)], truth)
    assert rows[0]["point"] > 0.95 and abs(rows[0]["extended"]) < 0.2
    assert rows[1]["extended"] > 0.99 and rows[1]["point"] < 0.2
    assert np.isnan(rows[2]["point"]) and rows[2]["variance"] == 0
    with pytest.raises(InputError, match="do not fit in truth"):
        component_correlations([(maps, 20)], truth)


def test_feature_maps_errors_and_figure(tmp_path):
    with pytest.raises(InputError, match="got 1 convolutions from 1 channel"):
        feature_maps(create_model("cnn1"), np.zeros((40, 40)))
    with pytest.raises(InputError, match="smaller than the layer-2 window"):
        feature_maps(create_model("cnn3"), np.zeros((10, 40)))
    truth, _, _ = _sky()
    layers = feature_maps(create_model("cnn3"), truth)
    scores = component_correlations(layers, truth)
    for name, kwargs in (("scored.png", {"scores": scores}), ("variance.png", {})):
        assert feature_maps_figure(layers, truth.shape, tmp_path / name, size=32, **kwargs).stat().st_size > 0
