"""Test helper for the schema tests: a document with one value changed, the original untouched."""

from __future__ import annotations

import copy
from collections.abc import Sequence


def with_value(document, path: Sequence, value):
    """Return a deep copy of ``document`` whose node at ``path`` (keys and indexes) is ``value``."""
    changed = copy.deepcopy(document)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed
