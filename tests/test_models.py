"""Registry tests run on every registered network (timm-style)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astrodeconv.errors import InputError  # noqa: E402
from astrodeconv.nn.models import (  # noqa: E402
    conv_margin,
    count_parameters,
    create_model,
    list_models,
    model_info,
    receptive_field_margin,
)

MODELS = list_models()
#: The paper's networks (margin 9, 32 x 32 -> 14 x 14); the restorer has its own tests (test_restorer.py).
PAPER_MODELS = [name for name in MODELS if name != "restorer"]


def test_registry_lists_the_paper_networks():
    assert {"cnn3", "cnn1", "restorer"} <= set(MODELS)
    for name in MODELS:
        assert model_info(name).margin == create_model(name).margin == {"restorer": 34}.get(name, 9)


def test_unknown_model_names_the_choices():
    with pytest.raises(InputError, match=r"unknown model architecture 'cnn9'.*cnn3"):
        create_model("cnn9")


def test_bad_kwargs_are_an_input_error():
    with pytest.raises(InputError, match="does not accept"):
        create_model("cnn3", colour=3)
    with pytest.raises(InputError, match="odd"):
        create_model("cnn1", kernel=18)


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_output_shape_loses_the_margin_per_side(name):
    net = create_model(name)
    out = net(torch.rand(2, 1, 37, 31))
    m = net.margin
    assert tuple(out.shape) == (2, 1, 37 - 2 * m, 31 - 2 * m)
    assert tuple(net(torch.rand(3, 1, 32, 32)).shape) == (3, 1, 14, 14)


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_margin_measured_with_a_one_pixel_impulse(name):
    net = create_model(name)
    assert receptive_field_margin(net) == net.margin == 9


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_receptive_field_by_gradient_is_the_centred_19x19_window(name):
    net = create_model(name).double()
    with torch.no_grad():  # positive weights: every ReLU active, no hidden dependency
        for p in net.parameters():
            p.copy_(p.abs() + 1e-3)
    x = torch.ones(1, 1, 41, 41, dtype=torch.float64, requires_grad=True)
    out = net(x)
    i, j = 5, 11  # an off-centre output pixel
    out[0, 0, i, j].backward()
    support = (x.grad[0, 0] != 0).nonzero()
    m = net.margin
    assert support[:, 0].min() == i and support[:, 0].max() == i + 2 * m
    assert support[:, 1].min() == j and support[:, 1].max() == j + 2 * m
    assert int((x.grad[0, 0] != 0).sum()) == (2 * m + 1) ** 2


@pytest.mark.parametrize("name", PAPER_MODELS)
def test_no_nan_and_every_parameter_gets_a_gradient(name, rng):
    torch.manual_seed(1)
    net = create_model(name)
    x = torch.from_numpy(rng.random((4, 1, 32, 32), dtype=np.float32))
    target = torch.from_numpy(rng.random((4, 1, 14, 14), dtype=np.float32))
    out = net(x)
    assert torch.isfinite(out).all()
    loss = torch.nn.functional.mse_loss(out, target)
    loss.backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert float(p.grad.abs().sum()) > 0, pname


def test_cnn3_is_exactly_the_papers_architecture():
    net = create_model("cnn3")
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    shapes = [tuple(c.weight.shape) for c in convs]
    assert shapes == [(64, 1, 10, 10), (16, 64, 6, 6), (1, 16, 5, 5)]
    assert all(c.padding == (0, 0) and c.stride == (1, 1) for c in convs)
    assert sum(isinstance(m, torch.nn.ReLU) for m in net) == 3
    assert count_parameters(net) == 64 * 101 + 16 * (64 * 36 + 1) + 16 * 25 + 1 == 43745
    # the final ReLU: outputs are never negative
    assert float(net(-torch.rand(1, 1, 32, 32)).detach().min()) >= 0


def test_cnn1_is_one_linear_19x19_filter():
    net = create_model("cnn1")
    (conv,) = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    assert tuple(conv.weight.shape) == (1, 1, 19, 19)
    assert count_parameters(net) == 19 * 19 + 1
    x, y = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    b = conv.bias
    with torch.no_grad():  # linear (affine) map: f(x + y) - b = (f(x) - b) + (f(y) - b)
        assert torch.allclose(net(x + y) - b, (net(x) - b) + (net(y) - b), atol=1e-5)


def test_conv_margin_rejects_an_uncentred_stack():
    assert conv_margin([10, 6, 5]) == 9
    with pytest.raises(InputError, match="odd"):
        conv_margin([10, 5])
