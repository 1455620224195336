"""Protocol files: one dataclass per kind, and the errors for files that are not protocols."""

import dataclasses
import json
from pathlib import Path

import pytest

from astrodeconv.errors import InputError
from astrodeconv.experiments import run_benchmark
from astrodeconv.experiments.protocols import (GridProtocol, MismatchProtocol, Table1Protocol, check_kind,
                                               load_protocol, record, record_differences)

COMMON = """name = "tiny"
description = "tiny"
images = ["m101_dss1"]
psf = "gaussian:fwhm=4"
boundary = "zero"
sigma = 0.01
seed = 1
crop = 96
border = 8
classical = ["wiener"]
selections = ["oracle"]
"""
GRID = 'grid_sigmas = [0.01]\n[grid_psfs]\n"g4" = "gaussian:fwhm=4"\n'
COMMITTED_RECORD = Path(__file__).resolve().parents[1] / "docs" / "results" / "protocol.json"


def _write(tmp_path, text, name="p.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_shipped_protocols_load_as_their_kind():
    kinds = {name: load_protocol(name) for name in ("table1", "grid", "psf-mismatch")}
    assert [type(p) for p in kinds.values()] == [Table1Protocol, GridProtocol, MismatchProtocol]
    assert [p.kind for p in kinds.values()] == ["table1", "grid", "psf-mismatch"]
    assert kinds["table1"].networks == ["cnn1", "cnn3", "restorer", "restorer-universal"]
    assert list(kinds["psf-mismatch"].psf_given)[0] == "exact"
    assert kinds["grid"].grid_sigmas == [0.003, 0.01, 0.05]
    quick = kinds["grid"].quick_version()
    assert isinstance(quick, GridProtocol) and quick.quick == {}
    assert (quick.crop, quick.border, quick.images) == (160, 16, ["m51_dss1red"])
    assert quick.description.endswith("(quick: crop 160, border 16, images ['m51_dss1red'])")


def test_each_kind_reads_its_own_keys(tmp_path):
    table1 = load_protocol(_write(tmp_path, 'kind = "table1"\n' + COMMON + 'networks = ["cnn1"]\n'))
    assert isinstance(table1, Table1Protocol) and table1.training == {} and table1.pretrained == []
    grid = load_protocol(_write(tmp_path, 'kind = "grid"\n' + COMMON + GRID))
    assert isinstance(grid, GridProtocol) and grid.grid_psfs == {"g4": "gaussian:fwhm=4"}
    mismatch = load_protocol(_write(tmp_path, 'kind = "psf-mismatch"\n' + COMMON + '[psf_given]\n"e" = "gaussian:fwhm=4"\n'))
    assert isinstance(mismatch, MismatchProtocol) and mismatch.psf_given == {"e": "gaussian:fwhm=4"}


@pytest.mark.parametrize("text, message", [
    (COMMON + 'networks = ["cnn1"]\n', r"has no 'kind' key; expected kind = one of \['table1', 'grid', 'psf-mismatch', 'realistic'\]"),
    ('kind = "table2"\n' + COMMON, r"has kind 'table2'; expected kind = one of \['table1'"),
    ('kind = "table1"\n' + COMMON + 'networks = []\n[psf_given]\n"e" = "gaussian:fwhm=4"\n',
     r"is of kind 'table1', but has keys of other kinds: 'psf_given' \(psf-mismatch\)"),
    ('kind = "psf-mismatch"\n' + COMMON + 'networks = ["cnn3"]\n[psf_given]\n"e" = "gaussian:fwhm=4"\n',
     r"is of kind 'psf-mismatch', but has keys of other kinds: 'networks' \(table1\)"),
    ('kind = "table1"\n' + COMMON + 'networks = []\ncolour = "red"\n', r"unknown keys \['colour'\], missing keys \[\]"),
    ('kind = "table1"\n' + COMMON, r"unknown keys \[\], missing keys \['networks'\]"),
    ('kind = "grid"\n' + COMMON.replace('seed = 1\n', '') + GRID, r"missing keys \['seed'\]"),
    ('kind = "grid"\n' + COMMON + 'grid_sigmas = [0.01]\ngrid_psfs = {}\n', "expected at least one PSF and one sigma"),
    ('kind = "psf-mismatch"\n' + COMMON + "psf_given = {}\n", "has an empty psf_given table"),
    ('kind = "table1"\n' + COMMON + 'networks = []\n[quick]\ncrop = 64\ncolor = 1\n',
     r"\[quick\] keys \['color'\] are not fields of a table1 protocol"),
    ('kind = "table1"\n' + COMMON.replace('images = ["m101_dss1"]', "images = []") + "networks = []\n", "has no images"),
    ('kind = "table1"\n' + COMMON.replace("crop = 96", 'crop = "96"') + "networks = []\n",
     r"values of the wrong type: crop = '96' \(expected int\)"),
    ('kind = "grid"\n' + COMMON + 'grid_sigmas = 0.01\n[grid_psfs]\n"g4" = "gaussian:fwhm=4"\n',
     r"grid_sigmas = 0.01 \(expected list\)"),
    ('kind = "table1"\n' + COMMON.replace("border = 8", "border = 48") + "networks = []\n",
     "expected sigma >= 0 and 0 <= 2 \\* border < crop"),
])
def test_protocol_file_errors(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        load_protocol(_write(tmp_path, text))


def test_files_that_are_not_protocols(tmp_path):
    with pytest.raises(InputError, match="unknown protocol 'nope': expected one of"):
        load_protocol("nope")
    fits = tmp_path / "observed.fits"
    fits.write_bytes(b"SIMPLE  =                    T" + bytes(2850))
    for path, suffix in ((fits, ".fits"), (tmp_path / "x.fits.gz", ".fits.gz")):
        with pytest.raises(InputError, match=f"is a {suffix} file; expected a protocol name"):
            load_protocol(path)
    with pytest.raises(InputError, match=r"is a \.fits file"):
        run_benchmark(fits)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(InputError, match="is not a valid TOML file"):
        load_protocol(binary)
    with pytest.raises(InputError, match="is not a valid TOML file"):
        load_protocol(_write(tmp_path, "images = [unclosed\n"))


def test_the_report_of_one_kind_refuses_another():
    from astrodeconv.experiments import grid

    with pytest.raises(InputError, match="protocol 'table1' is of kind 'table1'; expected a 'grid' protocol"):
        grid.run(load_protocol("table1"), Path("."))
    check_kind(load_protocol("grid"), GridProtocol)


def test_the_committed_record_of_table1_is_accepted():
    """docs/results/protocol.json holds empty fields of every kind; only table1's count, and they agree."""
    committed = json.loads(COMMITTED_RECORD.read_text())
    protocol = load_protocol("table1")
    assert record_differences(protocol, committed) == []
    ours = record(protocol)
    assert ours == {k: v for k, v in committed.items() if k not in ("psf_given", "grid_psfs", "grid_sigmas")}
    assert record_differences(protocol.quick_version(), committed) == ["border", "crop"]
    assert record_differences(protocol, {**committed, "grid_sigmas": [0.01]}) == ["grid_sigmas"]
    assert record_differences(protocol, {**committed, "paper_rows": {}}) == ["paper_rows"]
    # a field the record lacks reads as its default
    without_rows = {k: v for k, v in committed.items() if k != "paper_rows"}
    assert record_differences(dataclasses.replace(protocol, paper_rows={}), without_rows) == []
    assert record_differences(protocol, without_rows) == ["paper_rows"]
