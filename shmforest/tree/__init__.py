"""Tree building: binning, compiled kernels, the builder and the flat-array Tree.

=============  ==============================================================
binning        :class:`Binner`: features to ``uint8`` quantile codes, once per fit
kernels        compiled (numba) histograms, split search, partition, growth, walk
growth         subtrees in one compiled call each; subtrees as executor tasks
builder        :class:`TreeParams`, :class:`TreeBuilder`: the one entry point
tree           :class:`Tree` (flat arrays)
ensemble       :class:`ForestArrays`, :func:`predict_forest`: many trees, one walk
=============  ==============================================================
"""

from __future__ import annotations

from shmforest.tree.binning import MAX_BINS, Binner
from shmforest.tree.builder import CRITERIA, TreeBuilder, TreeParams
from shmforest.tree.ensemble import (
    ForestArrays,
    apply_forest,
    predict_forest,
)
from shmforest.tree.tree import Tree

__all__ = [
    "CRITERIA",
    "MAX_BINS",
    "Binner",
    "ForestArrays",
    "Tree",
    "TreeBuilder",
    "TreeParams",
    "apply_forest",
    "predict_forest",
]
