"""The CUDA emulation harness itself (cuda/emu/): it must run correct kernels correctly and
report the misuse a GPU would punish (or hide): divergent or skipped barriers, partial-warp
shuffles, misaligned 128-bit accesses, bad launch configurations, shared-memory races."""
import numpy as np
import pytest


@pytest.fixture(scope="module")
def st(emu_module):
    return emu_module.selftest


def test_divergent_syncthreads_is_reported(st):
    out = np.zeros(64, np.float32)
    with pytest.raises(RuntimeError, match=r"divergent_barrier_kernel launch failed: .*divergent "
                                           r"__syncthreads"):
        st.divergent_barrier(out.ctypes.data)


def test_barrier_after_early_return_is_reported(st):
    out = np.zeros(64, np.float32)
    with pytest.raises(RuntimeError, match="early_return_barrier_kernel launch failed: .*returned"):
        st.early_return_barrier(out.ctypes.data, 40)
    st.early_return_barrier(out.ctypes.data, 64)  # every thread reaches the barrier: fine
    assert (out == 1).all()


def test_misaligned_vector_load_is_reported(st):
    buf = np.zeros(64, np.float32)
    base = buf[(-buf.ctypes.data // 4) % 4:]  # 16-byte aligned start; the kernel reads base + 1
    with pytest.raises(RuntimeError, match="misaligned float4 load"):
        st.misaligned_float4(base.ctypes.data, buf.ctypes.data)


def test_partial_warp_mask_is_reported(st):
    out = np.zeros(32, np.float32)
    with pytest.raises(RuntimeError, match="partial mask"):
        st.partial_mask(out.ctypes.data)


def test_errors_do_not_stick(st):
    out = np.zeros(64, np.float32)
    with pytest.raises(RuntimeError):
        st.divergent_barrier(out.ctypes.data)
    st.early_return_barrier(out.ctypes.data, 64)  # the next launch starts clean


@pytest.mark.parametrize("threads", [32, 64, 256, 1024])
def test_block_sum_with_shuffles(st, threads):
    rng = np.random.default_rng(threads)
    blocks, n = 3, 1000
    x = rng.standard_normal((blocks, n)).astype(np.float32)
    out = np.zeros(blocks, np.float32)
    st.block_sum(x.ctypes.data, out.ctypes.data, blocks, threads, n)
    np.testing.assert_allclose(out, x.astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-4)


def test_shuffle_semantics(st):
    x = np.arange(64, dtype=np.int32) * 3 + 1
    a, b, c = (np.zeros(64, np.int32) for _ in range(3))
    st.shuffle(x.ctypes.data, a.ctypes.data, b.ctypes.data, c.ctypes.data)
    lane = np.arange(64) % 32
    base = np.arange(64) - lane
    np.testing.assert_array_equal(a, x[base + (lane ^ 5)])
    np.testing.assert_array_equal(b, x[np.where(lane + 3 < 32, np.arange(64) + 3, np.arange(64))])
    np.testing.assert_array_equal(c, x[base + 7])


@pytest.mark.parametrize("threads", [0, 1025])
def test_bad_launch_configuration(st, threads):
    out = np.zeros(1, np.float32)
    with pytest.raises(RuntimeError, match="atomic_kernel launch failed: invalid configuration"):
        st.atomic_add(out.ctypes.data, 1, threads)


def test_atomics_across_threads_and_blocks(st):
    out = np.zeros(1, np.float32)
    st.atomic_add(out.ctypes.data, 5, 256)
    assert out[0] == 5 * 256


def test_shared_memory_race_shows_up(st):
    # Without the barrier, threads read neighbours' slots before they are written; run until the
    # race shows (threads are real and start in order, so the first run nearly always does).
    threads = 256
    x = np.arange(threads, dtype=np.float32)
    expect = np.roll(x, -1)
    out = np.zeros(threads, np.float32)
    st.neighbour(x.ctypes.data, out.ctypes.data, True, threads)
    np.testing.assert_array_equal(out, expect)
    wrong = False
    for attempt in range(20):
        st.neighbour((x + 1000 * (attempt + 1)).ctypes.data, out.ctypes.data, False, threads)
        wrong |= not np.array_equal(out, expect + 1000 * (attempt + 1))
        if wrong:
            break
    assert wrong, "the racy kernel gave the right answer 20 times: the harness hides races"
