"""The encoded rows one LightGBM is grown on, whichever engine grows it.

Its own module so that the single-machine fit (``training.train``) and the Dask fit
(``training.dask_engine``) take the same thing, and a new input (the revenue model's exposure
offset was one) reaches both.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FitData"]


@dataclass(frozen=True)
class FitData:
    """Training and validation rows, labels, weights, and the starting raw scores.

    ``init_train`` / ``init_valid``: each row's starting margin (the revenue model's log-link
    offset, log declared value); None starts every row from LightGBM's own average.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    w_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    w_valid: np.ndarray
    feature_names: list[str]
    categorical: list[int]
    init_train: np.ndarray | None = None
    init_valid: np.ndarray | None = None
