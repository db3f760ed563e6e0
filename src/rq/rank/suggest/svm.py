"""The exemplar SVM: a linear SVM per request, the read rows against all others, solved in numpy."""

from __future__ import annotations

import numpy as np

from rq.rank.suggest.scorers import centroid_scores

DEFAULT_SVM_C = 0.1  # chosen on six real reading lists (benchmarks/bench_recommend.py)


def svm_scores(vectors: np.ndarray, read: np.ndarray, weights: np.ndarray,
               c: float = DEFAULT_SVM_C) -> np.ndarray:
    """Decision value of a linear SVM separating the read rows from all others.

    The model of scikit-learn's LinearSVC (squared hinge loss, L2 penalty on the weights and
    the intercept alike, classes balanced), solved here by Newton's method in numpy:
    importing scikit-learn would cost a cold `rq next` 0.9 s. tests/test_recommend.py holds
    its rankings to LinearSVC's.
    """
    if read.all():
        return centroid_scores(vectors, read, weights)
    x = np.hstack([vectors.astype(np.float64), np.ones((len(vectors), 1))])  # last column: intercept
    y = np.where(read, 1.0, -1.0)
    w = squared_hinge_newton(x, y, _balanced_cost(read, weights, c))
    return x @ w


def _balanced_cost(read: np.ndarray, weights: np.ndarray, c: float) -> np.ndarray:
    """Per row: C, scaled so both classes weigh the same; recency reshapes the positives, not their total."""
    n, n_pos = len(read), int(read.sum())
    cost = np.where(read, n / (2.0 * n_pos), n / (2.0 * (n - n_pos))) * c
    cost[read] *= weights / weights.mean()
    return cost


def squared_hinge_newton(x: np.ndarray, y: np.ndarray, cost: np.ndarray, tol: float = 1e-8,
                         max_iter: int = 50) -> np.ndarray:
    """argmin_w  ||w||^2 / 2 + sum_i cost_i * max(0, 1 - y_i w.x_i)^2.

    The loss is once differentiable and piecewise quadratic, so a Newton step on the rows
    inside the margin, with backtracking, converges in a handful of iterations.
    """
    def objective(w):
        slack = np.maximum(0.0, 1.0 - y * (x @ w))
        return 0.5 * w @ w + cost @ (slack * slack)

    w = np.zeros(x.shape[1])
    value = objective(w)
    first = None
    for _ in range(max_iter):
        slack = 1.0 - y * (x @ w)
        active = slack > 0
        xa = x[active]
        grad = w - 2.0 * xa.T @ (cost[active] * slack[active] * y[active])
        norm = float(np.linalg.norm(grad))
        first = first or norm
        if norm <= tol * first:
            break
        hessian = np.eye(len(w)) + 2.0 * (xa.T * cost[active]) @ xa
        step = np.linalg.solve(hessian, grad)
        size = 1.0
        while size > 1e-6:
            candidate = w - size * step
            new_value = objective(candidate)
            if new_value <= value - 1e-4 * size * (grad @ step):
                break
            size /= 2
        w, value = candidate, new_value
    return w
