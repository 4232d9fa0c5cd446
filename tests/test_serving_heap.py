"""The server process's start is frozen out of the garbage collector (api.app.serve_app): a full
collection otherwise walked ~440,000 objects that live as long as the process, about 100 ms with
every request stopped."""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from api.app import create_app, serve_app


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()  # the test process's own frozen objects (if any) back first, and after
    yield
    gc.unfreeze()


def _full_collection_ms() -> float:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        gc.collect()
        best = min(best, (time.perf_counter() - t) * 1000)
    return best


def test_a_served_app_leaves_its_start_out_of_full_collections(unfrozen: None) -> None:
    create_app()
    tracked = len(gc.get_objects())
    assert tracked > 100_000  # what a full collection walks without the freeze
    serve_app()
    frozen = gc.get_freeze_count()
    assert frozen > 100_000 and len(gc.get_objects()) < tracked / 10, (frozen, len(gc.get_objects()))
    # The point of it, measured in the same process: a full collection is a fraction of before.
    after = _full_collection_ms()
    gc.unfreeze()
    before = _full_collection_ms()
    assert after < before / 5, (after, before)
