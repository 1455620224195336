"""astrodeconv: restore astronomical images with convolutional networks and classical methods.

The core is plain functions on NumPy arrays (``psf``, ``forward``, ``metrics``,
``classical``); FITS input/output lives in ``io`` and the command line in ``cli``.
"""

__version__ = "0.1.0"

from .errors import InputError  # noqa: F401
