"""Tested reference implementations for the concept pages of paper-notes.

One module per concept, named after it, so a reader who knows the paper knows where to
look: :mod:`refimpl.masking` (patches and masks, the tensor steps of MAE) is here now;
``vit``, ``mae``, ``hiera`` and ``kan`` are to come. Import the submodule you need, e.g.
``from refimpl.masking import patchify``; this package file imports nothing heavy.
"""

__version__ = "0.1.0"
