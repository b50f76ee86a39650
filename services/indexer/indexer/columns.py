"""A numpy array that grows at its end: per-face and per-person values at a
few bytes each, where a Python object costs about a hundred.

The array doubles when full, so an append costs O(1) amortised; the pages of
its free tail are never written, so they are not resident (np.empty of a
large array is a fresh mapping).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

_FIRST = 1024


class Column:
    def __init__(self, dtype: npt.DTypeLike) -> None:
        self._data: npt.NDArray[Any] = np.empty(0, dtype)
        self.size = 0

    @property
    def values(self) -> npt.NDArray[Any]:
        """The values, as a view: writes through it stay."""
        return self._data[: self.size]

    def extend(self, values: npt.NDArray[Any]) -> None:
        if values.dtype.kind == "S" and values.dtype.itemsize > self._data.dtype.itemsize:
            # A longer byte string than any before: every value is widened once.
            self._data = self._data.astype(values.dtype)
        end = self._room(len(values))
        self._data[self.size : end] = values
        self.size = end

    def fill(self, value: Any, count: int) -> None:
        """Appends `value` `count` times."""
        end = self._room(count)
        self._data[self.size : end] = value
        self.size = end

    def _room(self, count: int) -> int:
        end = self.size + count
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data), _FIRST), self._data.dtype)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        return end

    def keep(self, mask: npt.NDArray[np.bool_]) -> None:
        """Keeps the values where `mask` holds, in their order."""
        kept = self.values[mask]
        self._data[: len(kept)] = kept
        self.size = len(kept)
