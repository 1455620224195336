"""Dask prediction equals whole-image prediction, threaded and on a real LocalCluster."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from astropy.io import fits

torch = pytest.importorskip("torch")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from astrodeconv.errors import InputError  # noqa: E402
from astrodeconv.nn import deconvolve  # noqa: E402
from astrodeconv.nn.models import CNN3  # noqa: E402
from astrodeconv.parallel import deconvolve_dask, deconvolve_fits_dask  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module


class CountingCNN3(CNN3):
    """The paper's network, counting how often it is pickled (here) and unpickled (in workers)."""

    pickles = 0

    def __getstate__(self):
        type(self).pickles += 1
        return super().__getstate__()

    def __setstate__(self, state):
        os.environ["ASTRODECONV_TEST_LOADS"] = str(int(os.environ.get("ASTRODECONV_TEST_LOADS", "0")) + 1)
        super().__setstate__(state)


@pytest.fixture(scope="module")
def net():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        return CountingCNN3()


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


def _image(shape=(150, 130)):
    rng = np.random.default_rng(7)
    x = rng.random(shape) * 0.2
    x[shape[0] // 3 : shape[0] // 3 + 15, shape[1] // 2 : shape[1] // 2 + 15] += 1.0  # a bright block
    return x


@pytest.mark.parametrize("chunks", [32, (48, 40)])
@pytest.mark.parametrize("boundary", ["symmetric", "zero"])
def test_threaded_dask_equals_whole_image(net, chunks, boundary):
    y = _image()
    out = deconvolve_dask(da.from_array(y, chunks=chunks), net, boundary=boundary).compute(scheduler="threads")
    assert out.dtype == np.float32 and out.shape == y.shape
    np.testing.assert_allclose(out, deconvolve(y, net, boundary=boundary), atol=1e-5, rtol=0)


def test_local_cluster_equals_whole_image_and_ships_the_model_once(net, client):
    y = _image()
    x = da.from_array(y, chunks=32)  # 5 x 5 chunks: every chunk border is crossed by the 19 px window
    CountingCNN3.pickles = 0
    client.run(lambda: os.environ.pop("ASTRODECONV_TEST_LOADS", None))
    out = client.compute(deconvolve_dask(x, net)).result()
    np.testing.assert_allclose(out, deconvolve(y, net), atol=1e-5, rtol=0)
    loads = sum(int(v or 0) for v in client.run(lambda: os.environ.get("ASTRODECONV_TEST_LOADS")).values())
    # once in the graph, once from the scheduler to a worker; at most once per worker (25 chunks)
    assert CountingCNN3.pickles <= 3, CountingCNN3.pickles
    assert 1 <= loads <= 2, loads


def test_fits_on_cluster_with_nan_equals_whole_image(tmp_path, net, client):
    data = (_image((97, 83)) * 1000).astype(np.float32)
    data[50:53, 20:24] = np.nan
    fits.writeto(tmp_path / "in.fits", data, fits.Header({"CRVAL1": 3.0}))
    out = deconvolve_fits_dask(tmp_path / "in.fits", tmp_path / "out.fits", net, client, chunk=32, progress=False)
    bad = ~np.isfinite(data)
    scale = float(data[~bad].max())
    y = np.where(bad, 0, data) / scale
    expected = deconvolve(np.where(bad, np.median(y[~bad]), y), net) * scale
    expected[bad] = np.nan
    got = fits.getdata(out)
    assert fits.getheader(out)["CRVAL1"] == 3.0
    np.testing.assert_allclose(got, expected, atol=1e-5 * scale, rtol=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fits", "out.fits"]


def test_small_chunks_are_merged_or_refused(net):
    y = _image((60, 50))
    out = deconvolve_dask(da.from_array(y, chunks=(25, 45)), net).compute(scheduler="threads")  # last chunks 10, 5
    np.testing.assert_allclose(out, deconvolve(y, net), atol=1e-5, rtol=0)
    with pytest.raises(InputError, match="at least 10 pixels"):
        deconvolve_dask(da.from_array(y, chunks=((30, 5, 25), 50)), net)


def test_cli_scheduler_address_equals_in_memory_run(tmp_path, client):
    from astrodeconv.cli import main

    data = (_image((90, 70)) * 500).astype(np.float32)
    fits.writeto(tmp_path / "obs.fits", data, fits.Header({"ADPSF": "airy-paper"}))
    common = ["--method", "cnn1", "--select", "none", "--sigma-relative", "0.01"]  # the noise cnn1 was trained for
    assert main(["deconvolve", str(tmp_path / "obs.fits"), "-o", str(tmp_path / "mem.fits"), *common]) == 0
    assert main(["deconvolve", str(tmp_path / "obs.fits"), "-o", str(tmp_path / "dask.fits"), *common,
                 "--scheduler", client.scheduler.address, "--tile", "32"]) == 0
    np.testing.assert_allclose(fits.getdata(tmp_path / "dask.fits"), fits.getdata(tmp_path / "mem.fits"),
                               atol=1e-5 * float(data.max()), rtol=0)
