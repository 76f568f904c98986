"""Load every compiled kernel once: imported by the forkserver, so that workers start warm.

Importing this module runs :func:`warm_up`. numba loads a kernel from its cache
(``cache=True``) at the kernel's first call in a process, about 0.3 s for all of
them here, and compiles it when there is no cache yet (a fresh clone: about 16 s
once). The forkserver imports this module before it forks (``preload_in_workers``), so
each worker inherits loaded kernels instead of loading, or compiling, its own.
"""

from __future__ import annotations

import numpy as np

__all__ = ["warm_up"]


def warm_up() -> None:
    """Call each kernel on a tiny problem, with the argument types real fits pass."""
    from shmforest.tree.binning import Binner
    from shmforest.tree.builder import TreeBuilder, TreeParams
    from shmforest.tree.ensemble import ForestArrays
    from shmforest.tree.growth import GrowthSetup, Inputs, OpenNode, expand
    from shmforest.tree.kernels import node_stats, root_key

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    binner = Binner()
    data = {"Xb": binner.fit_transform(X), "thresholds": binner.thresholds_}
    classes = (X[:, 0] > 0).astype(np.int64)
    for p, y in (
        (TreeParams("gini", None, 2, 1, 3, 0.0, None, 2), classes),
        (TreeParams("squared_error", None, 2, 1, 3, 0.0, 4, 0), X[:, 1]),
    ):
        arrays = {**data, "y": y}
        tree = TreeBuilder(p).build(arrays, seed=0)
        ForestArrays([tree]).predict_value(X)
        tree.predict(X)
        # The branch-parallel driver's one-node kernel.
        inputs = Inputs.make(data["Xb"], y, np.ones(64), data["thresholds"], p.class_counts)
        samples = np.arange(64, dtype=np.int64)
        stats = node_stats(samples, inputs.yc, inputs.yr, inputs.w, p.n_stats, p.regression, p.n_outputs)
        setup = GrowthSetup.make(p, 3, int(inputs.offs[-1]), 64.0, 64, True)
        expand(setup, inputs, OpenNode(samples, root_key(0), 0, stats, None))
    TreeBuilder(TreeParams("gini", None, 2, 1, 3, 0.0, 4, 2)).build({**data, "y": classes}, seed=0)


warm_up()
