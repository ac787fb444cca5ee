"""The allocators of dmft.memory: zeros of the requested shape and type, every page mapped."""
import numpy as np
import pytest

from dmft.memory import PAGE, committed_zeros, touched_zeros


@pytest.mark.parametrize("shape,dtype", [((3, 5, 2, 256), np.float32), ((0, 4), np.float64),
                                         ((1000, 1000), np.float64)])
def test_touched_zeros_are_zeros(shape, dtype):
    x = touched_zeros(shape, dtype)
    assert x.shape == shape and x.dtype == dtype and x.flags.c_contiguous
    assert x.size == 0 or x.ctypes.data % 64 == 0   # starts on a cache line
    assert not x.any()


def test_touched_zeros_maps_its_pages_at_allocation():
    """Writing every element of a freshly touched array costs no further page fault."""
    resource = pytest.importorskip("resource")
    n = 64 * PAGE
    x = touched_zeros((n,), np.float64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x[:] = 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before <= 2


def test_committed_zeros():
    x = committed_zeros(1000)
    assert x.shape == (1000,) and x.dtype == np.float64 and not x.any()
    x[:] = 2.0                                   # writable
    assert committed_zeros(0).size == 0


def test_recycled_memory_is_reused_once_nothing_else_refers_to_it():
    from dmft.memory import history_array, recycle, release_spare, spare_bytes
    release_spare()
    arrays = [history_array((1000, 3), np.float64)]
    start = arrays[0].ctypes.data
    recycle(arrays)
    assert arrays == [] and spare_bytes() >= 24_000
    x = history_array((2000,), np.float32)           # fits in the spare block: the same memory
    assert x.ctypes.data == start and x.ctypes.data % 64 == 0 and spare_bytes() == 0
    view = x[:10]
    recycle([x])                                     # a view of it lives on: not kept
    assert spare_bytes() == 0
    del view
    y = history_array((2000,), np.float32)           # nothing spare: fresh zeros
    assert y.ctypes.data != start and not y.any()


def test_spare_memory_is_bounded(monkeypatch):
    from dmft import memory
    memory.release_spare()
    monkeypatch.setattr(memory, "SPARE_BYTES", 20_000)
    memory.recycle([memory.history_array((3000,))])  # 24 kB: larger than the bound, freed
    assert memory.spare_bytes() == 0
    for _ in range(3):                               # 8 kB each: the oldest goes
        memory.recycle([memory.history_array((1000,))])
    assert 0 < memory.spare_bytes() <= 20_000
    memory.release_spare()
    assert memory.spare_bytes() == 0


def test_fresh_memory_frees_the_spares_first(monkeypatch):
    """A request no spare block fits frees them (a process never holds idle spares while it
    takes fresh memory), and the memory check counts spares as available."""
    import io

    from dmft import checks, memory
    memory.release_spare()
    memory.recycle([memory.history_array((1000,))])
    spare = memory.spare_bytes()
    assert spare > 0
    monkeypatch.setattr(checks, "open", lambda *a: io.StringIO("MemAvailable: 1000 kB\n"),
                        raising=False)
    assert checks.available_bytes() == 1000 * 1024 + spare
    memory.history_array((2000,))                    # too large for the spare block
    assert memory.spare_bytes() == 0
