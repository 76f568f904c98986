"""Node records of a tree being grown, and the canonical numbering that makes a Tree.

Levels and subtree tasks append their nodes in whatever order they finish; each
record names its parent and side. :func:`records_to_tree` then numbers the nodes
breadth first, left before right, so the Tree's layout depends on its shape
alone, not on how the growth was split into tasks.
"""

from __future__ import annotations

import numpy as np

from shmforest.tree.tree import TREE_LEAF, TREE_UNDEFINED, Tree

__all__ = ["NodeRecords", "records_to_tree"]


class NodeRecords:
    """Node records of a (partial) tree, appended a level at a time."""

    FIELDS = ("parent", "side", "depth", "feature", "threshold", "value", "n", "weight", "impurity")

    def __init__(self) -> None:
        self.parts: dict[str, list[np.ndarray]] = {f: [] for f in self.FIELDS}
        self.count = 0

    def append(self, **arrays: np.ndarray) -> np.ndarray:
        """Add nodes (one array per field); return their record ids."""
        n = arrays["parent"].shape[0]
        for f in self.FIELDS:
            self.parts[f].append(arrays[f])
        ids = np.arange(self.count, self.count + n)
        self.count += n
        return ids

    def arrays(self) -> dict[str, np.ndarray]:
        """All records, one array per field (what a subtree task sends back)."""
        return {f: np.concatenate(p) if p else np.empty(0) for f, p in self.parts.items()}

    def merge(self, other: dict[str, np.ndarray], root_parent: np.ndarray) -> None:
        """Add a task's records; its j-th root hangs under ``root_parent[j]`` here."""
        parent = other["parent"].copy()
        roots = parent < 0
        parent[~roots] += self.count
        parent[roots] = root_parent[-1 - parent[roots]]
        self.append(**{**other, "parent": parent})

    def make_leaves(self, ids: np.ndarray) -> None:
        """Turn recorded nodes back into leaves (splits that were never made)."""
        if ids.size == 0:
            return
        arrays = self.arrays()
        arrays["feature"][ids] = TREE_UNDEFINED
        arrays["threshold"][ids] = TREE_UNDEFINED
        self.parts = {f: [arrays[f]] for f in self.FIELDS}


def records_to_tree(records: NodeRecords, n_features: int) -> Tree:
    """Number the nodes breadth first, left before right, and build the Tree."""
    r = records.arrays()
    parent, side, depth = r["parent"], r["side"].astype(np.int64), r["depth"]
    n = parent.shape[0]
    new_id = np.empty(n, dtype=np.int64)
    by_depth = np.argsort(depth, kind="stable")
    bounds = np.searchsorted(depth[by_depth], np.arange(int(depth.max()) + 2))
    next_id = 0
    for d in range(bounds.size - 1):
        nodes = by_depth[bounds[d] : bounds[d + 1]]
        if d == 0:
            rank = np.zeros(nodes.size, dtype=np.int64)
        else:
            rank = new_id[parent[nodes]] * 2 + side[nodes]
        nodes = nodes[np.argsort(rank, kind="stable")]
        new_id[nodes] = np.arange(next_id, next_id + nodes.size)
        next_id += nodes.size
    order = np.argsort(new_id)
    left = np.full(n, TREE_LEAF, dtype=np.int64)
    right = np.full(n, TREE_LEAF, dtype=np.int64)
    has_parent = parent >= 0
    child_ids = new_id[has_parent]
    parent_ids = new_id[parent[has_parent]]
    is_right = side[has_parent] == 1
    left[parent_ids[~is_right]] = child_ids[~is_right]
    right[parent_ids[is_right]] = child_ids[is_right]
    value = r["value"].reshape(n, -1)[order]
    return Tree(
        left, right, r["feature"][order], r["threshold"][order], value,
        r["n"][order], r["weight"][order], r["impurity"][order], n_features,
    )
