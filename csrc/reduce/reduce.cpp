// Reductions over any set of axes, softmax rows and the strided (transposing) copy.
//
// A reduction first normalises its view: size-1 axes go, reduced axes are ordered by stride and
// merged where they are contiguous with each other, kept axes are merged where the input allows
// (the output stays C-contiguous over the kept axes). Then one of two loops:
//   A. the innermost reduced axis is the input's smallest stride (sum(dim=-1), mean over (2, 3)
//      of NCHW): every output reduces rows of L values (contiguous: the SIMD row kernels of
//      kernels.inl; strided rows are gathered into a buffer first);
//   B. the innermost kept axis has stride 1 (sum(dim=0), mean over (0, 2) of (N, C, L) with L
//      kept): rows of the input are added into rows of accumulators, SIMD along the kept axis.
// Accuracy and determinism: values are summed in T lanes over short blocks (kernels.inl) whose
// totals go into double; each output is cut into units of about kUnitElems elements whose
// partial sums are added in unit order. The units depend on the shape only, so a result is
// bitwise the same for every thread count (use_deterministic_algorithms holds without asking),
// and threads take whole units (output x unit items).
#include "reduce/reduce.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "cpu_features.h"
#include "parallel.h"
#include "reduce/kernels.h"

#define PYDL_SIMD_NS portable
#include "reduce/kernels.inl"
#undef PYDL_SIMD_NS

namespace pydl {
namespace reduce {

template <typename T>
const RowKernels<T>& row_kernels_portable() {
  static const RowKernels<T> table = portable::make_row_kernels<T, simd::portable::Scalar>();
  return table;
}

namespace {

constexpr int64_t kUnitElems = 32768;  // elements per partial sum (fixed: shape-only split)
constexpr int64_t kColBlock = 2048;    // kept columns per item in loop B
static_assert(kColBlock <= portable::kMaxCols, "add_cols keeps a row of kColBlock sums on the stack");
// Loop B's units are larger: each unit's partials are a row of doubles as wide as the kept
// axis, written and read back once (sum(dim=0) of 4096 x 1024: 16 units, 128 KiB of partials).
constexpr int64_t kUnitElemsB = 262144;
constexpr int64_t kMinThreadElems = 32768;  // below this per thread, one thread does it all

template <typename T>
const RowKernels<T>& row_kernels() {
#ifdef PYDL_HAVE_AVX512_KERNELS
  if (use_avx512()) return row_kernels_avx512<T>();
#endif
#ifdef PYDL_HAVE_AVX2_KERNELS
  if (use_avx2()) return row_kernels_avx2<T>();
#endif
  return row_kernels_portable<T>();
}

struct Dim {
  int64_t size, stride;
};

// The normalised problem: kept axes (output order) and reduced axes (outermost first).
struct Plan {
  std::vector<Dim> kept, red;
  int64_t outputs = 1, per_output = 1;
};

Plan make_plan(const View& v, const std::vector<bool>& reduced) {
  if (v.shape.size() != v.strides.size() || v.shape.size() != reduced.size())
    throw std::invalid_argument("reduce: shape, strides and axes differ in length");
  Plan p;
  for (size_t i = 0; i < v.shape.size(); ++i) {
    if (v.shape[i] < 0 || v.strides[i] < 0)
      throw std::invalid_argument("reduce: negative size or stride");
    if (reduced[i]) p.per_output *= v.shape[i];
    else p.outputs *= v.shape[i];
    if (v.shape[i] == 1) continue;
    (reduced[i] ? p.red : p.kept).push_back({v.shape[i], v.strides[i]});
  }
  // Kept: merge neighbours (in output order) that are contiguous in the input.
  std::vector<Dim> kept;
  for (const Dim& d : p.kept) {
    if (!kept.empty() && kept.back().stride == d.stride * d.size) {
      kept.back() = {kept.back().size * d.size, d.stride};
    } else {
      kept.push_back(d);
    }
  }
  p.kept = kept;
  // Reduced: any order gives the same sum; outermost (largest stride) first, then merged. The
  // sort is stable so a C-contiguous input keeps row-major order (argmax's flat index).
  std::stable_sort(p.red.begin(), p.red.end(),
                   [](const Dim& a, const Dim& b) { return a.stride > b.stride; });
  std::vector<Dim> red;
  for (const Dim& d : p.red) {
    if (!red.empty() && red.back().stride == d.stride * d.size) {
      red.back() = {red.back().size * d.size, d.stride};
    } else {
      red.push_back(d);
    }
  }
  p.red = red;
  return p;
}

// Offsets of every multi-index over dims (row-major), as a table: dims here are the outer
// reduced axes or the outer kept axes, whose product is the number of rows.
std::vector<int64_t> offsets(const std::vector<Dim>& dims, size_t count) {
  int64_t n = 1;
  for (size_t i = 0; i < count; ++i) n *= dims[i].size;
  std::vector<int64_t> off(n);
  if (n == 0) return off;
  // An odometer over the multi-index (no division per entry: 4096 rows cost ~1 us less).
  std::vector<int64_t> idx(count, 0);
  int64_t cur = 0;
  for (int64_t r = 0; r < n; ++r) {
    off[r] = cur;
    for (size_t i = count; i-- > 0;) {
      if (++idx[i] < dims[i].size) {
        cur += dims[i].stride;
        break;
      }
      cur -= (dims[i].size - 1) * dims[i].stride;
      idx[i] = 0;
    }
  }
  return off;
}

// Threads only when each gets enough elements to pay for waking it.
int64_t item_grain(int64_t items, int64_t elems_per_item) {
  const int64_t per_thread = std::max<int64_t>(1, kMinThreadElems / std::max<int64_t>(1, elems_per_item));
  return std::min(std::max<int64_t>(1, items), per_thread);
}

// Loop A: rows of L along the innermost reduced axis.
struct RowsA {
  std::vector<int64_t> out_off, row_off;
  int64_t L = 1, stride = 1, rows = 1, rows_per_unit = 1, segs = 1, units = 1, seg_len = 1;
};

RowsA rows_a(const Plan& p) {
  RowsA a;
  a.out_off = offsets(p.kept, p.kept.size());
  if (!p.red.empty()) {
    a.L = p.red.back().size;
    a.stride = p.red.back().stride;
  } else {
    a.L = 1;
  }
  a.row_off = offsets(p.red, p.red.empty() ? 0 : p.red.size() - 1);
  a.rows = int64_t(a.row_off.size());
  if (a.L >= kUnitElems) {
    a.segs = (a.L + kUnitElems - 1) / kUnitElems;
    a.seg_len = kUnitElems;
    a.units = a.rows * a.segs;
  } else {
    a.rows_per_unit = std::max<int64_t>(1, kUnitElems / std::max<int64_t>(1, a.L));
    a.seg_len = a.L;
    a.units = (a.rows + a.rows_per_unit - 1) / a.rows_per_unit;
  }
  return a;
}

// Calls fn(row, k0, k1, ptr) for the pieces [k0, k1) of rows in unit u; ptr points at element k0
// of the row, contiguous (gathered into buf when the row is strided).
template <typename T, typename Fn>
void for_unit(const RowsA& a, const T* base, int64_t u, T* buf, Fn&& fn) {
  int64_t r0, r1, k0 = 0, k1 = a.L;
  if (a.segs > 1) {
    r0 = u / a.segs, r1 = r0 + 1;
    k0 = (u % a.segs) * a.seg_len, k1 = std::min(a.L, k0 + a.seg_len);
  } else {
    r0 = u * a.rows_per_unit, r1 = std::min(a.rows, r0 + a.rows_per_unit);
  }
  for (int64_t r = r0; r < r1; ++r) {
    const T* row = base + a.row_off[r];
    if (a.stride == 1) {
      fn(r, k0, k1, row + k0);
    } else {
      for (int64_t k = k0; k < k1; ++k) buf[k - k0] = row[k * a.stride];
      fn(r, k0, k1, static_cast<const T*>(buf));
    }
  }
}

// Loop B: the innermost kept axis (length L) is contiguous.
struct RowsB {
  std::vector<int64_t> outer_off, row_off;
  int64_t L = 1, rows = 1, col_blocks = 1, rows_per_unit = 1, units = 1;
};

bool use_loop_b(const Plan& p) {
  if (p.kept.empty() || p.kept.back().stride != 1) return false;
  return p.red.empty() || p.red.back().stride > 1;
}

RowsB rows_b(const Plan& p) {
  RowsB b;
  b.L = p.kept.back().size;
  b.outer_off = offsets(p.kept, p.kept.size() - 1);
  b.row_off = offsets(p.red, p.red.size());
  b.rows = int64_t(b.row_off.size());
  b.col_blocks = (b.L + kColBlock - 1) / kColBlock;
  b.rows_per_unit = std::max<int64_t>(1, kUnitElemsB / std::min(b.L, kColBlock));
  b.units = (b.rows + b.rows_per_unit - 1) / b.rows_per_unit;
  return b;
}

// Adds n doubles pairwise (the partial sums of one output, in unit order).
double pairwise(const double* v, int64_t n, int64_t step) {
  if (n <= 8) {
    double s = 0;
    for (int64_t i = 0; i < n; ++i) s += v[i * step];
    return s;
  }
  const int64_t h = n / 2;
  return pairwise(v, h, step) + pairwise(v + h * step, n - h, step);
}

// out[j] = pairwise(v + j, n, step) for j < w, the same additions in the same order, done a
// row of w at a time (vectorised) instead of one strided column at a time.
void pairwise_rows(const double* v, int64_t n, int64_t step, int64_t w, double* out) {
  if (n <= 8) {
    std::fill(out, out + w, 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < w; ++j) out[j] += v[i * step + j];
    return;
  }
  const int64_t h = n / 2;
  std::vector<double> tmp(w);
  pairwise_rows(v, h, step, w, out);
  pairwise_rows(v + h * step, n - h, step, w, tmp.data());
  for (int64_t j = 0; j < w; ++j) out[j] += tmp[j];
}

}  // namespace
}  // namespace reduce

using namespace reduce;

template <typename T>
void reduce_sum_cpu(const T* x, const View& v, const std::vector<bool>& reduced, SumOp op,
                    const T* centre, T* out) {
  const Plan p = make_plan(v, reduced);
  if (p.outputs == 0) return;
  if (p.per_output == 0) {
    std::fill(out, out + p.outputs, T(0));
    return;
  }
  const RowKernels<T>& K = row_kernels<T>();
  if (use_loop_b(p)) {
    const RowsB b = rows_b(p);
    const int64_t outer = int64_t(b.outer_off.size());
    const int64_t items = outer * b.col_blocks * b.units;
    std::vector<double> partial(outer * b.units * b.L);
    const int64_t per_item = b.rows_per_unit * std::min(b.L, kColBlock);
    parallel_blocks(items, item_grain(items, per_item), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t u = i % b.units, cb = (i / b.units) % b.col_blocks;
        const int64_t o = i / (b.units * b.col_blocks);
        const int64_t j0 = cb * kColBlock, j1 = std::min(b.L, j0 + kColBlock), w = j1 - j0;
        double* part = partial.data() + (o * b.units + u) * b.L + j0;
        std::fill(part, part + w, 0.0);
        const T* c = centre ? centre + o * b.L + j0 : nullptr;
        const int64_t r0 = u * b.rows_per_unit, r1 = std::min(b.rows, r0 + b.rows_per_unit);
        K.add_cols[int(op)](x + b.outer_off[o] + j0, b.row_off.data() + r0, r1 - r0, w, c, part);
      }
    });
    // Units added pairwise, a chunk of columns per item.
    constexpr int64_t kChunk = 512;
    const int64_t chunks = (b.L + kChunk - 1) / kChunk, n_items = outer * chunks;
    parallel_blocks(n_items, item_grain(n_items, b.units * kChunk), [&](int64_t e0, int64_t e1) {
      std::vector<double> tot(std::min(b.L, kChunk));
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t o = e / chunks, j0 = (e % chunks) * kChunk, w = std::min(b.L, j0 + kChunk) - j0;
        pairwise_rows(partial.data() + o * b.units * b.L + j0, b.units, b.L, w, tot.data());
        for (int64_t j = 0; j < w; ++j) out[o * b.L + j0 + j] = T(tot[j]);
      }
    });
    return;
  }
  const RowsA a = rows_a(p);
  const int64_t outs = int64_t(a.out_off.size());
  // Items are (block of outputs, unit). Within an item the rows go outermost: for mean over
  // (0, 2, 3) of NCHW the outputs (channels) of one image lie next to each other, so the
  // block is read as one run of memory per image instead of one 4 KiB row per 256 KiB jump.
  // Each output still adds its rows' sums in row order, so the bits do not depend on the
  // block size (nor on the thread count).
  const int64_t ob = a.segs > 1 ? 1
                                : std::max<int64_t>(1, std::min<int64_t>((8192 + a.L - 1) / a.L,
                                                                         outs / 8));
  const int64_t oblocks = (outs + ob - 1) / ob;
  // A row longer than a unit (the full sum of a big array) is cut into segments, one unit
  // each; an item takes four of them, summed by the four-stream kernel where they are four
  // whole segments of one contiguous row (which units these are depends on the shape only).
  const int64_t ug = a.segs > 1 ? 4 : 1;
  const int64_t ugroups = (a.units + ug - 1) / ug;
  const int64_t items = oblocks * ugroups;
  std::vector<double> partial(outs * a.units);
  const int64_t per_item = (a.segs > 1 ? a.seg_len * ug : a.rows_per_unit * a.L) * ob;
  parallel_blocks(items, item_grain(items, per_item), [&](int64_t i0, int64_t i1) {
    std::vector<T> buf(a.stride == 1 ? 0 : a.seg_len);
    std::vector<double> acc(ob);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t g = i % ugroups, o0 = (i / ugroups) * ob, o1 = std::min(outs, o0 + ob);
      if (a.segs > 1) {  // up to four segments of one long row (ob == 1)
        const double c = centre ? double(centre[o0]) : 0.0;
        const int64_t u0 = g * ug, u1 = std::min(a.units, u0 + ug);
        const int64_t row = u0 / a.segs, seg0 = u0 % a.segs;
        if (u1 - u0 == 4 && a.stride == 1 && op != SumOp::kExpDiff && (u1 - 1) / a.segs == row &&
            (seg0 + 4) * a.seg_len <= a.L) {
          const T* base = x + a.out_off[o0] + a.row_off[row] + seg0 * a.seg_len;
          const T* rp[4] = {base, base + a.seg_len, base + 2 * a.seg_len, base + 3 * a.seg_len};
          const double cc[4] = {c, c, c, c};
          double s4[4];
          K.sum4[int(op)](rp, a.seg_len, cc, s4);
          for (int q = 0; q < 4; ++q) partial[o0 * a.units + u0 + q] = s4[q];
          continue;
        }
        for (int64_t u = u0; u < u1; ++u) {
          double s = 0;
          for_unit(a, x + a.out_off[o0], u, buf.data(),
                   [&](int64_t, int64_t k0, int64_t k1, const T* seg) {
                     s += K.sum[int(op)](seg, k1 - k0, c);
                   });
          partial[o0 * a.units + u] = s;
        }
        continue;
      }
      const int64_t u = g;
      std::fill(acc.begin(), acc.end(), 0.0);
      const int64_t r0 = u * a.rows_per_unit, r1 = std::min(a.rows, r0 + a.rows_per_unit);
      // Four rows per call where they are contiguous; exp(x - c) is compute-bound and keeps
      // the one-row kernel (four rows of exp chains would spill registers).
      const bool by4 = a.stride == 1 && op != SumOp::kExpDiff;
      for (int64_t r = r0; r < r1; ++r) {
        int64_t o = o0;
        for (; by4 && o + 4 <= o1; o += 4) {
          const T* rp[4];
          double cc[4], s4[4];
          for (int q = 0; q < 4; ++q) {
            rp[q] = x + a.out_off[o + q] + a.row_off[r];
            cc[q] = centre ? double(centre[o + q]) : 0.0;
          }
          K.sum4[int(op)](rp, a.L, cc, s4);
          for (int q = 0; q < 4; ++q) acc[o + q - o0] += s4[q];
        }
        for (; o < o1; ++o) {
          const T* row = x + a.out_off[o] + a.row_off[r];
          if (a.stride != 1) {
            for (int64_t k = 0; k < a.L; ++k) buf[k] = row[k * a.stride];
            row = buf.data();
          }
          acc[o - o0] += K.sum[int(op)](row, a.L, centre ? double(centre[o]) : 0.0);
        }
      }
      for (int64_t o = o0; o < o1; ++o) partial[o * a.units + u] = acc[o - o0];
    }
  });
  for (int64_t o = 0; o < outs; ++o) out[o] = T(pairwise(partial.data() + o * a.units, a.units, 1));
}

namespace {

// Whether candidate (v, i) replaces the current extreme (m, mi) seen earlier in order: NaN wins
// and stays; otherwise a strictly better value (ties keep the first index).
template <typename T>
inline bool better(T v, T m, ExtOp op) {
  if (m != m) return false;
  if (v != v) return true;
  return op == ExtOp::kMin ? v < m : v > m;
}


}  // namespace

template <typename T>
void reduce_ext_cpu(const T* x, const View& v, const std::vector<bool>& reduced, ExtOp op,
                    T* out, int64_t* index) {
  const Plan p = make_plan(v, reduced);
  if (p.outputs == 0) return;
  if (p.per_output == 0)
    throw std::invalid_argument("reduce: max/min of an empty set of values (no identity)");
  const RowKernels<T>& K = row_kernels<T>();
  const T init = op == ExtOp::kMin ? std::numeric_limits<T>::infinity()
                                   : -std::numeric_limits<T>::infinity();
  if (use_loop_b(p)) {
    const RowsB b = rows_b(p);
    const int64_t outer = int64_t(b.outer_off.size());
    const int64_t items = outer * b.col_blocks * b.units;
    std::vector<T> pv(outer * b.units * b.L);
    std::vector<int64_t> pi(index ? pv.size() : 0);
    const int64_t per_item = b.rows_per_unit * std::min(b.L, kColBlock);
    parallel_blocks(items, item_grain(items, per_item), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t u = i % b.units, cb = (i / b.units) % b.col_blocks;
        const int64_t o = i / (b.units * b.col_blocks);
        const int64_t j0 = cb * kColBlock, j1 = std::min(b.L, j0 + kColBlock), w = j1 - j0;
        T* m = pv.data() + (o * b.units + u) * b.L + j0;
        int64_t* mi = index ? pi.data() + (o * b.units + u) * b.L + j0 : nullptr;
        std::fill(m, m + w, init);
        if (mi) std::fill(mi, mi + w, u * b.rows_per_unit);
        const int64_t r0 = u * b.rows_per_unit, r1 = std::min(b.rows, r0 + b.rows_per_unit);
        for (int64_t r = r0; r < r1; ++r) {
          const T* row = x + b.outer_off[o] + b.row_off[r] + j0;
          for (int64_t j = 0; j < w; ++j) {
            const T val = op == ExtOp::kMaxAbs ? std::fabs(row[j]) : row[j];
            if (better(val, m[j], op)) {
              m[j] = val;
              if (mi) mi[j] = r;
            }
          }
        }
      }
    });
    const int64_t n_out = outer * b.L;
    for (int64_t e = 0; e < n_out; ++e) {
      const int64_t o = e / b.L, j = e % b.L;
      T m = init;
      int64_t mi = 0;
      for (int64_t u = 0; u < b.units; ++u) {
        const int64_t k = (o * b.units + u) * b.L + j;
        if (u == 0 || better(pv[k], m, op)) {
          m = pv[k];
          if (index) mi = pi[k];
        }
      }
      out[e] = m;
      if (index) index[e] = mi;
    }
    return;
  }
  const RowsA a = rows_a(p);
  const int64_t outs = int64_t(a.out_off.size());
  const int64_t items = outs * a.units;
  std::vector<T> pv(items);
  std::vector<int64_t> pi(items);
  const int64_t per_item = a.segs > 1 ? a.seg_len : a.rows_per_unit * a.L;
  parallel_blocks(items, item_grain(items, per_item), [&](int64_t i0, int64_t i1) {
    std::vector<T> buf(a.stride == 1 ? 0 : a.seg_len);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t o = i / a.units, u = i % a.units;
      T m = init;
      int64_t mi = -1;
      for_unit(a, x + a.out_off[o], u, buf.data(),
               [&](int64_t r, int64_t k0, int64_t k1, const T* row) {
                 const T rv = K.ext(row, k1 - k0, op);
                 if (mi < 0 || better(rv, m, op)) {
                   m = rv;
                   if (index) mi = r * a.L + k0 + K.find(row, k1 - k0, rv, op);
                   else mi = 0;
                 }
               });
      pv[i] = m, pi[i] = mi;
    }
  });
  for (int64_t o = 0; o < outs; ++o) {
    T m = pv[o * a.units];
    int64_t mi = pi[o * a.units];
    for (int64_t u = 1; u < a.units; ++u) {
      if (better(pv[o * a.units + u], m, op)) m = pv[o * a.units + u], mi = pi[o * a.units + u];
    }
    out[o] = m;
    if (index) index[o] = mi;
  }
}

template <typename T>
void softmax_rows_cpu(const T* x, int64_t rows, int64_t n, bool log, T* y) {
  if (rows <= 0 || n <= 0) return;
  const RowKernels<T>& K = row_kernels<T>();
  parallel_blocks(rows, item_grain(rows, n), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) K.softmax(x + r * n, n, log, y + r * n);
  });
}

namespace {

// Square tiles of the blocked transpose: 32 x 32 elements (4 or 8 KiB) read and written line
// by line keep both the source columns and the destination rows in L1.
constexpr int64_t kTile = 32;

template <typename E>
void copy_typed(const E* x, const View& v, E* y) {
  // Drop size-1 axes and merge axes contiguous in the input (output is C-order of the view).
  std::vector<Dim> dims;
  int64_t total = 1;
  for (size_t i = 0; i < v.shape.size(); ++i) {
    total *= v.shape[i];
    if (v.shape[i] == 1) continue;
    if (!dims.empty() && dims.back().stride == v.strides[i] * v.shape[i])
      dims.back() = {dims.back().size * v.shape[i], v.strides[i]};
    else
      dims.push_back({v.shape[i], v.strides[i]});
  }
  if (total == 0) return;
  if (dims.empty()) {
    y[0] = x[0];
    return;
  }
  const int64_t nd = int64_t(dims.size());
  const int64_t L = dims.back().size;
  // The axis the input walks contiguously (smallest stride), if it is not already the last.
  int64_t p = nd - 1;
  for (int64_t i = 0; i < nd; ++i)
    if (dims[i].stride < dims[p].stride) p = i;
  if (p == nd - 1 || dims[p].stride != 1) {
    // Rows of the output one after another (the last axis strided or contiguous).
    const std::vector<int64_t> off = offsets(dims, dims.size() - 1);
    const int64_t rows = int64_t(off.size()), s = dims.back().stride;
    parallel_blocks(rows, item_grain(rows, L), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const E* src = x + off[r];
        E* dst = y + r * L;
        if (s == 1) std::memcpy(dst, src, sizeof(E) * L);
        else for (int64_t k = 0; k < L; ++k) dst[k] = src[k * s];
      }
    });
    return;
  }
  // A batch of 2-D transposes: axis p (input stride 1) against the last axis (output stride 1).
  const int64_t P = dims[p].size, S = dims.back().stride;
  int64_t out_p = 1;  // output stride of axis p
  for (int64_t i = p + 1; i < nd; ++i) out_p *= dims[i].size;
  std::vector<Dim> batch;  // the other axes with their input and output strides
  std::vector<int64_t> out_stride;
  int64_t os = 1;
  std::vector<int64_t> out_strides(nd);
  for (int64_t i = nd - 1; i >= 0; --i) out_strides[i] = os, os *= dims[i].size;
  for (int64_t i = 0; i < nd - 1; ++i)
    if (i != p) batch.push_back(dims[i]), out_stride.push_back(out_strides[i]);
  int64_t nb = 1;
  for (const Dim& d : batch) nb *= d.size;
  const int64_t tp = (P + kTile - 1) / kTile, tl = (L + kTile - 1) / kTile;
  const int64_t items = nb * tp * tl;
  parallel_blocks(items, item_grain(items, kTile * kTile), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      int64_t bi = i / (tp * tl), in_off = 0, out_off = 0;
      for (size_t d = batch.size(); d-- > 0;) {
        const int64_t idx = bi % batch[d].size;
        bi /= batch[d].size;
        in_off += idx * batch[d].stride, out_off += idx * out_stride[d];
      }
      const int64_t a0 = ((i / tl) % tp) * kTile, a1 = std::min(P, a0 + kTile);
      const int64_t l0 = (i % tl) * kTile, l1 = std::min(L, l0 + kTile);
      if constexpr (sizeof(E) == 4 || sizeof(E) == 8) {
        // The ISA's tile kernel (AVX2: 8x8 / 4x4 register transposes), on the bits as float
        // or double (moves only).
        using F = std::conditional_t<sizeof(E) == 4, float, double>;
        reduce::row_kernels<F>().transpose_tile(
            reinterpret_cast<const F*>(x + in_off + a0 + l0 * S), S,
            reinterpret_cast<F*>(y + out_off + a0 * out_p + l0), out_p, a1 - a0, l1 - l0);
      } else {
        for (int64_t a = a0; a < a1; ++a) {
          const E* src = x + in_off + a;
          E* dst = y + out_off + a * out_p;
          for (int64_t l = l0; l < l1; ++l) dst[l] = src[l * S];
        }
      }
    }
  });
}

}  // namespace

void copy_strided_cpu(const void* x, const View& v, int64_t elem_size, void* y) {
  if (elem_size == 4)
    return copy_typed(static_cast<const uint32_t*>(x), v, static_cast<uint32_t*>(y));
  if (elem_size == 8)
    return copy_typed(static_cast<const uint64_t*>(x), v, static_cast<uint64_t*>(y));
  if (elem_size == 1)
    return copy_typed(static_cast<const uint8_t*>(x), v, static_cast<uint8_t*>(y));
  throw std::invalid_argument("copy_strided: element size must be 1, 4 or 8, got " +
                              std::to_string(elem_size));
}

#define PYDL_REDUCE_INSTANTIATE(T)                                                              \
  template void reduce_sum_cpu<T>(const T*, const View&, const std::vector<bool>&, SumOp,       \
                                  const T*, T*);                                                \
  template void reduce_ext_cpu<T>(const T*, const View&, const std::vector<bool>&, ExtOp, T*,   \
                                  int64_t*);                                                    \
  template void softmax_rows_cpu<T>(const T*, int64_t, int64_t, bool, T*);
PYDL_REDUCE_INSTANTIATE(float)
PYDL_REDUCE_INSTANTIATE(double)
#undef PYDL_REDUCE_INSTANTIATE

}  // namespace pydl
