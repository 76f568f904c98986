"""Tree building: binning, criteria, the level-wise builder and the flat-array Tree.

=============  ==============================================================
binning        :class:`Binner`: features to ``uint8`` quantile codes, once per fit
criterion      gini, entropy, squared_error, vectorized over histograms
splitter       best splits of many nodes at once (dense histograms, sorted runs)
seeding        random draws from the tree's seed and each node's position
growth         level-wise and best-first growth; subtrees as executor tasks
records        node records and their canonical breadth-first numbering
builder        :class:`TreeParams`, :class:`TreeBuilder`: the one entry point
walk           rows walking down one tree together, a depth per step
tree           :class:`Tree` (flat arrays)
ensemble       :class:`CodedForest`, :func:`predict_forest`: many trees, on integer codes
=============  ==============================================================
"""

from __future__ import annotations

from shmforest.tree.binning import MAX_BINS, Binner
from shmforest.tree.builder import TreeBuilder, TreeParams
from shmforest.tree.criterion import CRITERIA, Criterion, get_criterion
from shmforest.tree.ensemble import CodedForest, apply_forest, predict_forest
from shmforest.tree.tree import Tree

__all__ = [
    "CRITERIA",
    "MAX_BINS",
    "Binner",
    "CodedForest",
    "Criterion",
    "Tree",
    "TreeBuilder",
    "TreeParams",
    "apply_forest",
    "get_criterion",
    "predict_forest",
]
