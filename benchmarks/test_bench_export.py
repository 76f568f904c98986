"""``to_sklearn()`` through the ONNX toolchain: skl2onnx converts the scikit-learn
estimator holding our trees, and onnxruntime (float32) predicts as we do.

skl2onnx and onnxruntime are peers of the ``bench`` extra, so this check runs with
the benchmark suites (``make bench``), not in ``make test``.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import skl2onnx

from shmforest import DecisionTreeClassifier, RandomForestClassifier, RandomForestRegressor


def problem(cls: type, n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    if "Classifier" in cls.__name__:
        y = np.array(["cat", "dog", "emu"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 1)]
    else:
        y = 2 * X[:, 0] + X[:, 1] ** 2 + rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("ours_cls", [RandomForestClassifier, RandomForestRegressor, DecisionTreeClassifier])
def test_onnx_round_trip(ours_cls: type) -> None:
    X, y = problem(ours_cls)
    params = {"max_depth": 6, "executor": "serial", "random_state": 0}
    if ours_cls is not DecisionTreeClassifier:
        params["n_estimators"] = 6
    model = ours_cls(**params).fit(X, y)
    options = {"zipmap": False} if "Classifier" in ours_cls.__name__ else None
    onnx = skl2onnx.to_onnx(model.to_sklearn(), X[:1].astype(np.float32), options=options)
    session = ort.InferenceSession(onnx.SerializeToString(), providers=["CPUExecutionProvider"])
    X_new, _ = problem(ours_cls, n=1000, seed=3)
    outputs = session.run(None, {session.get_inputs()[0].name: X_new.astype(np.float32)})
    if "Classifier" in ours_cls.__name__:
        np.testing.assert_array_equal(outputs[0], model.predict(X_new))
        np.testing.assert_allclose(outputs[1], model.predict_proba(X_new), rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(outputs[0][:, 0], model.predict(X_new), rtol=1e-5, atol=1e-5)
