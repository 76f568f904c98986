"""Minimal cost-complexity pruning of a grown tree, as scikit-learn prunes (``ccp_alpha``).

The cost of a subtree is ``R(T) + alpha * |leaves(T)|``, where ``R`` sums the
leaves' ``weighted_n_node_samples * impurity`` over the root's weight. Weakest-link
pruning repeatedly collapses the internal node whose collapse costs least per leaf
removed, ``(R(node) - R(branch)) / (leaves(branch) - 1)``, until that cost exceeds
``ccp_alpha``; the alphas met on the way are the pruning path. The kernel follows
scikit-learn's ``_cost_complexity_prune`` step for step (same sums in the same
order, ties to the lowest node id), so on the same tree the path and the pruned tree
are scikit-learn's to the bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from shmforest.tree.tree import TREE_LEAF, TREE_UNDEFINED, Tree

__all__ = ["prune_tree", "pruning_path"]


@njit(nogil=True, cache=True)
def _weakest_link(left, right, weighted, impurity, ccp_alpha, stop_at_alpha):
    """Prune weakest links until one costs more than ``ccp_alpha`` (or the root is a leaf).

    Returns the nodes kept, the kept nodes that are leaves, and the path: the
    effective alpha of each step and the total leaf impurity after it.
    """
    n = left.shape[0]
    r_node = weighted * impurity / weighted[0]
    parent = np.full(n, TREE_UNDEFINED, dtype=np.int64)
    leaves = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        if left[i] == TREE_LEAF:
            leaves[i] = True
        else:
            parent[left[i]] = i
            parent[right[i]] = i
    n_leaves = np.zeros(n, dtype=np.int64)
    r_branch = np.zeros(n, dtype=np.float64)
    for leaf in range(n):
        if not leaves[leaf]:
            continue
        r_branch[leaf] = r_node[leaf]
        node = leaf
        while node != 0:
            node = parent[node]
            r_branch[node] += r_node[leaf]
            n_leaves[node] += 1
    candidate = ~leaves
    in_subtree = np.ones(n, dtype=np.bool_)
    alphas = np.empty(n, dtype=np.float64)
    totals = np.empty(n, dtype=np.float64)
    alphas[0], totals[0] = 0.0, r_branch[0]
    steps = 1
    stack = np.empty(n, dtype=np.int64)
    while candidate[0]:
        effective = np.finfo(np.float64).max
        weakest = -1
        for i in range(n):
            if candidate[i]:
                alpha = (r_node[i] - r_branch[i]) / (n_leaves[i] - 1)
                if alpha < effective:
                    effective, weakest = alpha, i
        if stop_at_alpha and ccp_alpha < effective:
            break
        top = 0
        stack[0] = weakest
        while top >= 0:
            node = stack[top]
            top -= 1
            if not in_subtree[node]:
                continue
            candidate[node] = leaves[node] = in_subtree[node] = False
            if left[node] != TREE_LEAF:
                stack[top + 1], stack[top + 2] = left[node], right[node]
                top += 2
        leaves[weakest] = in_subtree[weakest] = True
        removed = n_leaves[weakest] - 1
        n_leaves[weakest] = 0
        r_diff = r_node[weakest] - r_branch[weakest]
        r_branch[weakest] = r_node[weakest]
        node = parent[weakest]
        while node != TREE_UNDEFINED:
            n_leaves[node] -= removed
            r_branch[node] += r_diff
            node = parent[node]
        alphas[steps], totals[steps] = effective, r_branch[0]
        steps += 1
    return in_subtree, leaves, alphas[:steps], totals[:steps]


def _prune(tree: Tree, ccp_alpha: float, stop_at_alpha: bool) -> tuple[np.ndarray, ...]:
    return _weakest_link(
        tree.children_left,
        tree.children_right,
        tree.weighted_n_node_samples,
        tree.impurity,
        float(ccp_alpha),
        stop_at_alpha,
    )


def prune_tree(tree: Tree, ccp_alpha: float) -> Tree:
    """The subtree of ``tree`` that minimal cost-complexity pruning keeps at ``ccp_alpha``.

    Parameters
    ----------
    tree : Tree
    ccp_alpha : float
        Non-negative. The pruned tree is the largest subtree whose weakest link costs
        more than ``ccp_alpha``; ``0`` returns ``tree`` itself, as scikit-learn's
        estimators skip pruning at 0.

    Returns
    -------
    Tree
        Nodes renumbered in the original order (preorder stays preorder); a collapsed
        node becomes a leaf that keeps its value, samples and impurity.
    """
    if not ccp_alpha >= 0:
        raise ValueError(f"ccp_alpha must be a non-negative float, got {ccp_alpha!r}")
    if ccp_alpha == 0 or tree.node_count == 1:
        return tree
    kept, leaves, _, _ = _prune(tree, ccp_alpha, True)
    if kept.all():
        return tree
    new_id = np.cumsum(kept) - 1
    left, right = tree.children_left[kept].copy(), tree.children_right[kept].copy()
    feature, threshold = tree.feature[kept].copy(), tree.threshold[kept].copy()
    missing_go_to_left = tree.missing_go_to_left[kept].copy()
    collapsed = leaves[kept]
    internal = ~collapsed
    left[internal], right[internal] = new_id[left[internal]], new_id[right[internal]]
    left[collapsed] = right[collapsed] = TREE_LEAF
    feature[collapsed], threshold[collapsed] = TREE_UNDEFINED, float(TREE_UNDEFINED)
    missing_go_to_left[collapsed] = 0
    return Tree(
        left,
        right,
        feature,
        threshold,
        tree.value[kept],
        tree.n_node_samples[kept],
        tree.weighted_n_node_samples[kept],
        tree.impurity[kept],
        tree.n_features,
        missing_go_to_left=missing_go_to_left,
    )


def pruning_path(tree: Tree) -> dict[str, np.ndarray]:
    """The cost-complexity pruning path of ``tree``, as scikit-learn's ``ccp_pruning_path``.

    Returns
    -------
    dict
        ``"ccp_alphas"``: the effective alpha of each pruning step, from 0; ``"impurities"``:
        the total leaf impurity (weighted, over the root's weight) of the subtree after it.
    """
    _, _, alphas, totals = _prune(tree, 0.0, False)
    return {"ccp_alphas": alphas, "impurities": totals}
