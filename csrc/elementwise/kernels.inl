// The elementwise kernels, written once over simd/vec.h and compiled per instruction set.
//
// Included (only) by kernels.cpp, kernels_avx2.cpp and kernels_avx512.cpp, each with its own
// PYDL_SIMD_NS and ISA tag (see the one-definition note in simd/vec.h); each defines its
// KernelTable from make_table<ISA>() below.
//
// An op is a functor on vectors: `V operator()(V a, V b) const` (or one / three arguments),
// built from Params in T. map_run turns it into an inner kernel for the loop driver: for each
// run it picks, per input, contiguous loads, a broadcast (stride 0: the value is splatted once)
// or, for any other stride, a gather of up to kBlock elements into a stack buffer, and
// instantiates the vector loop for each combination of broadcast inputs so the hot loop has no
// per-element branches. The output run is always contiguous (outputs are fresh C arrays).
#include <cmath>
#include <cstdint>
#include <cstring>

#include "elementwise/ops.h"
#include "simd/vec_math.h"

namespace pydl::ew::PYDL_SIMD_NS {

using namespace ::pydl::simd::PYDL_SIMD_NS;

constexpr int64_t kBlock = 256;

// Applies f to each lane with the C library (arguments vector reduction cannot take exactly).
template <class V, class F>
inline V lanewise(V x, F f) {
  using T = elem_t<V>;
  alignas(64) T t[V::size];
  x.store(t);
  for (int i = 0; i < V::size; ++i) t[i] = f(t[i]);
  return V::load(t);
}
template <class V, class F>
inline V lanewise2(V a, V b, F f) {
  using T = elem_t<V>;
  alignas(64) T ta[V::size], tb[V::size];
  a.store(ta);
  b.store(tb);
  for (int i = 0; i < V::size; ++i) ta[i] = f(ta[i], tb[i]);
  return V::load(ta);
}

// ---- the inner loop ---------------------------------------------------------------------------
// out[i] = op(in_0[i], ...) for i < m, input j broadcast when bit j of BC is set.
template <class V, unsigned BC, int NIn, class Op>
PYDL_SIMD_FLATTEN inline void map_contig(elem_t<V>* out, const elem_t<V>* const* src, int64_t m,
                                         const Op& op) {
  V bc[NIn];
  for (int j = 0; j < NIn; ++j)
    if (BC & (1u << j)) bc[j] = V::set1(*src[j]);
  auto in = [&](int j, int64_t i) { return (BC & (1u << j)) ? bc[j] : V::load(src[j] + i); };
  auto in_tail = [&](int j, int64_t i, int r) {
    return (BC & (1u << j)) ? bc[j] : V::load_partial(src[j] + i, r);
  };
  int64_t i = 0;
  // One vector per iteration. The transcendental kernels are latency-bound on Zen 3: a
  // sigmoid vector is a ~60-cycle dependent chain of ~35 macro-ops, and the out-of-order window
  // (256 entries) overlaps only ~7 iterations, whatever the unrolling. Measured (1 thread, L2-
  // resident, CPU time, all three in one process): unrolling by 2 or 4 was 8-12% slower than
  // by 1 for exp / sigmoid / silu, and no faster for the GELU. kUnroll stays a knob for other
  // machines.
  auto apply = [&](int64_t j) {
    if constexpr (NIn == 1) return op(in(0, j));
    if constexpr (NIn == 2) return op(in(0, j), in(1, j));
    if constexpr (NIn == 3) return op(in(0, j), in(1, j), in(2, j));
  };
  constexpr int kUnroll = 1;
  for (; i + kUnroll * V::size <= m; i += kUnroll * V::size) {
    V y[kUnroll];
    for (int u = 0; u < kUnroll; ++u) y[u] = apply(i + u * V::size);
    for (int u = 0; u < kUnroll; ++u) y[u].store(out + i + u * V::size);
  }
  for (; i + V::size <= m; i += V::size) {
    if constexpr (NIn == 1) op(in(0, i)).store(out + i);
    if constexpr (NIn == 2) op(in(0, i), in(1, i)).store(out + i);
    if constexpr (NIn == 3) op(in(0, i), in(1, i), in(2, i)).store(out + i);
  }
  if (i < m) {
    const int r = int(m - i);
    if constexpr (NIn == 1) op(in_tail(0, i, r)).store_partial(out + i, r);
    if constexpr (NIn == 2) op(in_tail(0, i, r), in_tail(1, i, r)).store_partial(out + i, r);
    if constexpr (NIn == 3)
      op(in_tail(0, i, r), in_tail(1, i, r), in_tail(2, i, r)).store_partial(out + i, r);
  }
}

template <class V, int NIn, class Op, unsigned BC = 0>
inline void map_dispatch(unsigned bc, elem_t<V>* out, const elem_t<V>* const* src, int64_t m,
                         const Op& op) {
  if constexpr (BC + 1 < (1u << NIn)) {
    if (bc != BC) return map_dispatch<V, NIn, Op, BC + 1>(bc, out, src, m, op);
  }
  map_contig<V, BC, NIn>(out, src, m, op);
}

// The loop driver's run -> vector loop, for ops whose inputs are all of type T.
template <class V, int NIn, class Op>
void map_run(char* const* ptrs, const int64_t* strides, int64_t n, const Op& op) {
  using T = elem_t<V>;
  T* out = reinterpret_cast<T*>(ptrs[0]);
  unsigned bc = 0;
  bool gather = false;
  const T* src[NIn];
  for (int j = 0; j < NIn; ++j) {
    src[j] = reinterpret_cast<const T*>(ptrs[j + 1]);
    if (strides[j + 1] == 0) bc |= 1u << j;
    else if (strides[j + 1] != int64_t(sizeof(T))) gather = true;
  }
  if (!gather) return map_dispatch<V, NIn>(bc, out, src, n, op);
  alignas(64) T buf[NIn][kBlock];
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    const T* blk[NIn];
    for (int j = 0; j < NIn; ++j) {
      const int64_t s = strides[j + 1];
      if (s == 0 || s == int64_t(sizeof(T))) {
        blk[j] = s == 0 ? src[j] : src[j] + i0;
        continue;
      }
      const char* p = ptrs[j + 1] + i0 * s;
      for (int64_t i = 0; i < m; ++i) std::memcpy(&buf[j][i], p + i * s, sizeof(T));
      blk[j] = buf[j];
    }
    map_dispatch<V, NIn>(bc, out + i0, blk, m, op);
  }
}

// ---- unary ops --------------------------------------------------------------------------------
template <class V> struct NegOp { V operator()(V x) const { return -x; } };
template <class V> struct AbsOp { V operator()(V x) const { return abs(x); } };
template <class V> struct SqrtOp { V operator()(V x) const { return sqrt(x); } };
template <class V> struct RsqrtOp { V operator()(V x) const { return vset<V>(1.0) / sqrt(x); } };
template <class V> struct ExpOp { V operator()(V x) const { return exp(x); } };
template <class V> struct LogOp { V operator()(V x) const { return log(x); } };
template <class V> struct Log1pOp { V operator()(V x) const { return log1p(x); } };
template <class V> struct Expm1Op { V operator()(V x) const { return expm1(x); } };
template <class V> struct TanhOp { V operator()(V x) const { return tanh(x); } };
template <class V> struct SigmoidOp { V operator()(V x) const { return sigmoid(x); } };

template <class V>
struct SinCosOp {
  double q0;  // 0: sin, 1: cos
  V operator()(V x) const {
    using T = elem_t<V>;
    if (any(abs(x) > vset<V>(sincos_limit<T>))) {
      // Large arguments: the C library's full-precision reduction, in double.
      return lanewise(x, [&](T v) { return T(q0 == 0 ? std::sin(double(v)) : std::cos(double(v))); });
    }
    return detail::sin_quadrant(x, q0);
  }
};

template <class V>
struct ErfOp {
  V operator()(V x) const {
    if constexpr (std::is_same_v<elem_t<V>, float>) return erf(x);
    else return lanewise(x, [](double v) { return std::erf(v); });
  }
};

// Phi(x), the standard normal CDF (exact GELU), and e^(-x^2/2) alongside when asked for: one
// vectorised formula for float and double (vec_math.h's normal_cdf; float64 used the C
// library's erfc lane by lane before).
template <class V>
inline V phi_cdf(V x) {
  return normal_cdf(x);
}
template <class V>
inline V phi_cdf(V x, V& e_half_x2) {
  return normal_cdf(x, e_half_x2);
}

template <class V> struct ReluOp {
  // x <= 0 ? 0 : x: NaN stays NaN (as torch.relu), -0 becomes +0.
  V operator()(V x) const { const V z = vset<V>(0.0); return select(x <= z, z, x); }
};
template <class V> struct LeakyReluOp {
  V slope;
  V operator()(V x) const { return select(x > vset<V>(0.0), x, x * slope); }
};
template <class V> struct EluOp {
  V alpha;
  V operator()(V x) const { return select(x > vset<V>(0.0), x, alpha * expm1(x)); }
};
template <class V> struct GeluOp { V operator()(V x) const { return gelu_exact(x); } };
// x/2 (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): one exp, no cancellation.
template <class V>
inline V gelu_tanh_u2(V x) {
  const V x2 = x * x;
  return x * fma(x2, vset<V>(2 * 0.7978845608028654 * 0.044715), vset<V>(2 * 0.7978845608028654));
}
template <class V> struct GeluTanhOp { V operator()(V x) const { return x * sigmoid(gelu_tanh_u2(x)); } };
template <class V> struct SiluOp { V operator()(V x) const { return x * sigmoid(x); } };
template <class V> struct SoftplusOp {
  V beta, inv_beta, threshold;
  // (max(bx, 0) + log1p(e^-|bx|)) / beta, x itself above the threshold (PyTorch's softplus).
  V operator()(V x) const {
    const V bx = x * beta;
    const V y = (max(bx, vset<V>(0.0)) + log1p(exp(-abs(bx)))) * inv_beta;
    return select(bx > threshold, x, y);
  }
};
template <class V> struct HardtanhOp {
  V lo, hi;
  // The vector operand first: x86 min/max return their second operand when either is NaN.
  V operator()(V x) const { return min(hi, max(lo, x)); }
};
template <class V> struct PowScalarOp {
  double p;
  V operator()(V x) const {
    using T = elem_t<V>;
    const V one = vset<V>(1.0);
    if (p == 2) return x * x;
    if (p == 3) return x * x * x;
    if (p == 1) return x;
    if (p == 0.5) return sqrt(x);
    if (p == -0.5) return one / sqrt(x);
    if (p == -1) return one / x;
    if (p == -2) return one / (x * x);
    if (p == 0) return one;  // pow(NaN, 0) = 1, as C and PyTorch
    const T pt = T(p);
    return lanewise(x, [pt](T v) { return std::pow(v, pt); });
  }
};

// ---- binary ops -------------------------------------------------------------------------------
template <class V> struct AddOp { V operator()(V a, V b) const { return a + b; } };
template <class V> struct SubOp { V operator()(V a, V b) const { return a - b; } };
template <class V> struct MulOp { V operator()(V a, V b) const { return a * b; } };
template <class V> struct DivOp { V operator()(V a, V b) const { return a / b; } };
// max(a, b) returns b when either is NaN; a NaN a is put back: NaN from either side propagates.
template <class V> struct MaximumOp { V operator()(V a, V b) const { return select(isnan(a), a, max(a, b)); } };
template <class V> struct MinimumOp { V operator()(V a, V b) const { return select(isnan(a), a, min(a, b)); } };
template <class V> struct PowOp {
  V operator()(V a, V b) const {
    using T = elem_t<V>;
    return lanewise2(a, b, [](T x, T y) { return std::pow(x, y); });
  }
};

template <class V> struct ReluBackwardOp {
  V operator()(V g, V y) const { const V z = vset<V>(0.0); return select(y <= z, z, g); }
};
template <class V> struct LeakyReluBackwardOp {
  V slope;
  V operator()(V g, V x) const { return select(x > vset<V>(0.0), g, g * slope); }
};
template <class V> struct EluBackwardOp {
  V alpha;
  V operator()(V g, V y) const { return select(y <= vset<V>(0.0), g * (y + alpha), g); }
};
template <class V> struct HardtanhBackwardOp {
  V lo, hi;
  V operator()(V g, V y) const {
    return select((y == lo) | (y == hi), vset<V>(0.0), g);
  }
};
template <class V> struct SigmoidBackwardOp {
  V operator()(V g, V y) const { return g * y * (vset<V>(1.0) - y); }
};
template <class V> struct TanhBackwardOp {
  V operator()(V g, V y) const { return g * (vset<V>(1.0) - y * y); }
};
template <class V> struct GeluBackwardOp {
  V operator()(V g, V x) const {
    V e;
    const V cdf = phi_cdf(x, e);
    return g * fma(x, e * vset<V>(0.39894228040143267794), cdf);
  }
};
template <class V> struct GeluTanhBackwardOp {
  // y = x s, s = sigmoid(2u): dy/dx = s + x s (1 - s) 2u', 2u' = 2c (1 + 3k x^2).
  V operator()(V g, V x) const {
    const V s = sigmoid(gelu_tanh_u2(x));
    const V du2 = fma(x * x, vset<V>(2 * 0.7978845608028654 * 3 * 0.044715),
                      vset<V>(2 * 0.7978845608028654));
    return g * fma(x * s * (vset<V>(1.0) - s), du2, s);
  }
};
template <class V> struct SiluBackwardOp {
  V operator()(V g, V x) const {
    const V s = sigmoid(x);
    const V one = vset<V>(1.0);
    return g * s * fma(x, one - s, one);
  }
};
template <class V> struct SoftplusBackwardOp {
  V beta, threshold;
  V operator()(V g, V x) const {
    const V bx = x * beta;
    return select(bx > threshold, g, g * sigmoid(bx));
  }
};

// ---- bool-output and bool-input loops ---------------------------------------------------------
template <class V> struct EqOp { auto operator()(V a, V b) const { return a == b; } };
template <class V> struct NeOp { auto operator()(V a, V b) const { return a != b; } };
template <class V> struct LtOp { auto operator()(V a, V b) const { return a < b; } };
template <class V> struct LeOp { auto operator()(V a, V b) const { return a <= b; } };
template <class V> struct GtOp { auto operator()(V a, V b) const { return a > b; } };
template <class V> struct GeOp { auto operator()(V a, V b) const { return a >= b; } };

// Comparisons: the mask as 0/1 in T through map_run, then narrowed to bytes.
template <class V, class Cmp>
void compare_run(char* const* ptrs, const int64_t* strides, int64_t n, const Params&) {
  using T = elem_t<V>;
  alignas(64) T tmp[kBlock];
  const auto op = [](V a, V b) { return select(Cmp()(a, b), vset<V>(1.0), vset<V>(0.0)); };
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    char* p[3] = {reinterpret_cast<char*>(tmp), ptrs[1] + i0 * strides[1], ptrs[2] + i0 * strides[2]};
    const int64_t s[3] = {int64_t(sizeof(T)), strides[1], strides[2]};
    map_run<V, 2>(p, s, m, op);
    bool* out = reinterpret_cast<bool*>(ptrs[0]) + i0;
    for (int64_t i = 0; i < m; ++i) out[i] = tmp[i] != T(0);
  }
}

// where(cond, a, b): cond (bool) widened to 0/1 in T per block, then a vector select.
template <class V>
void where_run(char* const* ptrs, const int64_t* strides, int64_t n, const Params&) {
  using T = elem_t<V>;
  alignas(64) T cbuf[kBlock];
  const auto op = [](V c, V a, V b) { return select(c != vset<V>(0.0), a, b); };
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t m = std::min(kBlock, n - i0);
    const char* c = ptrs[1] + i0 * strides[1];
    const int64_t cs = strides[1];
    const int64_t cm = cs == 0 ? 1 : m;
    for (int64_t i = 0; i < cm; ++i) cbuf[i] = c[i * cs] ? T(1) : T(0);
    char* p[4] = {ptrs[0] + i0 * int64_t(sizeof(T)), reinterpret_cast<char*>(cbuf),
                  ptrs[2] + i0 * strides[2], ptrs[3] + i0 * strides[3]};
    const int64_t s[4] = {int64_t(sizeof(T)), cs == 0 ? 0 : int64_t(sizeof(T)), strides[2], strides[3]};
    map_run<V, 3>(p, s, m, op);
  }
}

// ---- the table --------------------------------------------------------------------------------
template <class V>
InnerFn unary_fn(Unary op) {
  using T = elem_t<V>;
  switch (op) {
#define PYDL_U(NAME, OP)                                                                \
  case Unary::NAME:                                                                     \
    return [](char* const* p, const int64_t* s, int64_t n, const Params&) {             \
      map_run<V, 1>(p, s, n, OP<V>{});                                                  \
    };
    PYDL_U(neg, NegOp) PYDL_U(abs, AbsOp) PYDL_U(sqrt, SqrtOp) PYDL_U(rsqrt, RsqrtOp)
    PYDL_U(exp, ExpOp) PYDL_U(log, LogOp) PYDL_U(log1p, Log1pOp) PYDL_U(expm1, Expm1Op)
    PYDL_U(tanh, TanhOp) PYDL_U(sigmoid, SigmoidOp) PYDL_U(erf, ErfOp) PYDL_U(relu, ReluOp)
    PYDL_U(gelu, GeluOp) PYDL_U(gelu_tanh, GeluTanhOp) PYDL_U(silu, SiluOp)
#undef PYDL_U
    case Unary::sin:
      return [](char* const* p, const int64_t* s, int64_t n, const Params&) {
        map_run<V, 1>(p, s, n, SinCosOp<V>{0.0});
      };
    case Unary::cos:
      return [](char* const* p, const int64_t* s, int64_t n, const Params&) {
        map_run<V, 1>(p, s, n, SinCosOp<V>{1.0});
      };
    case Unary::leaky_relu:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 1>(p, s, n, LeakyReluOp<V>{vset<V>(T(q.p0))});
      };
    case Unary::elu:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 1>(p, s, n, EluOp<V>{vset<V>(T(q.p0))});
      };
    case Unary::softplus:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 1>(p, s, n, SoftplusOp<V>{vset<V>(T(q.p0)), vset<V>(T(1.0 / q.p0)), vset<V>(T(q.p1))});
      };
    case Unary::hardtanh:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 1>(p, s, n, HardtanhOp<V>{vset<V>(T(q.p0)), vset<V>(T(q.p1))});
      };
    case Unary::pow_scalar:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 1>(p, s, n, PowScalarOp<V>{q.p0});
      };
    case Unary::count: break;
  }
  return nullptr;
}

template <class V>
InnerFn binary_fn(Binary op) {
  using T = elem_t<V>;
  switch (op) {
#define PYDL_B(NAME, OP)                                                                \
  case Binary::NAME:                                                                    \
    return [](char* const* p, const int64_t* s, int64_t n, const Params&) {             \
      map_run<V, 2>(p, s, n, OP<V>{});                                                  \
    };
    PYDL_B(add, AddOp) PYDL_B(sub, SubOp) PYDL_B(mul, MulOp) PYDL_B(div, DivOp)
    PYDL_B(maximum, MaximumOp) PYDL_B(minimum, MinimumOp) PYDL_B(pow, PowOp)
    PYDL_B(relu_backward, ReluBackwardOp) PYDL_B(sigmoid_backward, SigmoidBackwardOp)
    PYDL_B(tanh_backward, TanhBackwardOp) PYDL_B(gelu_backward, GeluBackwardOp)
    PYDL_B(gelu_tanh_backward, GeluTanhBackwardOp) PYDL_B(silu_backward, SiluBackwardOp)
#undef PYDL_B
    case Binary::leaky_relu_backward:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 2>(p, s, n, LeakyReluBackwardOp<V>{vset<V>(T(q.p0))});
      };
    case Binary::elu_backward:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 2>(p, s, n, EluBackwardOp<V>{vset<V>(T(q.p0))});
      };
    case Binary::hardtanh_backward:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 2>(p, s, n, HardtanhBackwardOp<V>{vset<V>(T(q.p0)), vset<V>(T(q.p1))});
      };
    case Binary::softplus_backward:
      return [](char* const* p, const int64_t* s, int64_t n, const Params& q) {
        map_run<V, 2>(p, s, n, SoftplusBackwardOp<V>{vset<V>(T(q.p0)), vset<V>(T(q.p1))});
      };
    case Binary::count: break;
  }
  return nullptr;
}

template <class V>
InnerFn compare_fn(Compare op) {
  switch (op) {
    case Compare::eq: return compare_run<V, EqOp<V>>;
    case Compare::ne: return compare_run<V, NeOp<V>>;
    case Compare::lt: return compare_run<V, LtOp<V>>;
    case Compare::le: return compare_run<V, LeOp<V>>;
    case Compare::gt: return compare_run<V, GtOp<V>>;
    case Compare::ge: return compare_run<V, GeOp<V>>;
    case Compare::count: break;
  }
  return nullptr;
}

template <class ISA>
KernelTable make_table() {
  KernelTable t{};
  using VF = Vec<float, ISA>;
  using VD = Vec<double, ISA>;
  for (int i = 0; i < int(Unary::count); ++i) {
    t.unary[0][i] = unary_fn<VF>(Unary(i));
    t.unary[1][i] = unary_fn<VD>(Unary(i));
  }
  for (int i = 0; i < int(Binary::count); ++i) {
    t.binary[0][i] = binary_fn<VF>(Binary(i));
    t.binary[1][i] = binary_fn<VD>(Binary(i));
  }
  for (int i = 0; i < int(Compare::count); ++i) {
    t.compare[0][i] = compare_fn<VF>(Compare(i));
    t.compare[1][i] = compare_fn<VD>(Compare(i));
  }
  t.where[0] = where_run<VF>;
  t.where[1] = where_run<VD>;
  return t;
}

}  // namespace pydl::ew::PYDL_SIMD_NS
