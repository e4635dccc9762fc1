// Fused multi-step LIF and I-LIF on the CPU: one pass over T per direction.
//
// Layout: the input is [T, N] contiguous (N = every trailing dimension flattened). Threads
// split N; each thread walks blocks of neurons, and inside a block the innermost loop runs over
// contiguous neurons so the compiler vectorises it.
//
// Forward saves nothing: backward recomputes the membrane of a block into a small buffer from the
// input (which autograd keeps anyway), then walks time backwards. That moves fewer bytes than
// saving the membrane, and these kernels are bound by memory bandwidth.
//
// Exactness: the charge, fire and reset expressions are written in the same order as the
// reference loop (spikedrive/neurons/functional.py) and built with -ffp-contract=off, so the
// membrane is bit-identical to PyTorch's and so are the spikes. Only surrogate derivatives use
// an approximation (a polynomial exp accurate to about 2 ulp), which stays within float
// tolerance.
//
// Precision: tensors are read and written in their own dtype (io_t) and arithmetic runs in
// at::opmath_type<io_t> (float for bfloat16 and float16), each operation rounded back to io_t
// (`round_to`) as the reference loop's PyTorch ops round on the CPU, so spikes and membranes
// stay bit-identical to it; the roundings whose result is exact anyway (the fire test, the hard
// reset) are skipped. Gradients are computed in the compute type and rounded once when stored,
// as in the Triton kernels.

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "cpu_io.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace {

// Neurons per block. Long contiguous runs per time step keep the hardware prefetcher streaming;
// the backward buffer (T x block membranes) must still sit in L2.
int64_t block_for(int64_t T) {
  return std::clamp<int64_t>((int64_t{1} << 15) / std::max<int64_t>(T, 1), 256, 4096);
}

enum SurrogateCode : int64_t { kSigmoid = 0, kAtan = 1, kRectangle = 2, kStraightThrough = 3 };

// dst[0:len] = src[offset:offset+len] in the compute type, or `fill` where src is null. The
// branch stays outside the loop: inside, it kept GCC from vectorising the copy.
template <typename scalar_t, typename io_t>
inline void load_or_fill(scalar_t* dst, const io_t* src, int64_t offset, int64_t len, scalar_t fill) {
  if (!src) {
    std::fill(dst, dst + len, fill);
  } else if constexpr (std::is_same_v<scalar_t, io_t>) {
    std::memcpy(dst, src + offset, len * sizeof(scalar_t));
  } else {
    for (int64_t i = 0; i < len; ++i) dst[i] = static_cast<scalar_t>(src[offset + i]);
  }
}

// dst[0:len] = src[0:len] in the storage type (rounded once where it is narrower).
template <typename io_t, typename scalar_t>
inline void store(io_t* dst, const scalar_t* src, int64_t len) {
  if constexpr (std::is_same_v<scalar_t, io_t>) {
    std::memcpy(dst, src, len * sizeof(scalar_t));
  } else {
    for (int64_t i = 0; i < len; ++i) dst[i] = to_io<io_t>(src[i]);
  }
}

int64_t grain_for(int64_t T) { return std::max<int64_t>(block_for(T), (int64_t{1} << 15) / std::max<int64_t>(T, 1)); }

// a * b + c for the surrogate's polynomial only: one FMA where the build has them. (-ffp-contract
// is off for the whole file so that the membrane equations round like PyTorch's.)
inline float mul_add(float a, float b, float c) {
#ifdef __FMA__
  return std::fma(a, b, c);
#else
  return a * b + c;
#endif
}

// exp(x) for float, written so that GCC vectorises it (no libm call in the loop):
// exp(x) = 2^n * p(r), n = round(x / ln2), r = x - n ln2 (Cody-Waite), p a degree-6 Taylor
// polynomial; relative error below 2e-7 on the clamped range.
inline float exp_approx(float x) {
  x = std::min(std::max(x, -87.0f), 88.0f);
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding and subtracting rounds to an integer
  float n = (x * 1.44269504f + magic) - magic;
  float r = x - n * 0.693145752f;
  r = r - n * 1.42860677e-06f;
  float p = mul_add(r, 0.00138888892f, 0.00833333377f);
  p = mul_add(p, r, 0.0416666679f);
  p = mul_add(p, r, 0.166666672f);
  p = mul_add(p, r, 0.5f);
  p = mul_add(p, r, 1.0f);
  p = mul_add(p, r, 1.0f);
  int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

inline double exp_approx(double x) { return std::exp(x); }

// Pseudo-derivative of the Heaviside step at z = H - V_th (see neurons/surrogate.py).
template <typename scalar_t, int64_t kSurrogate>
inline scalar_t surrogate_derivative(scalar_t z, scalar_t p0, scalar_t p1) {
  if constexpr (kSurrogate == kSigmoid) {  // p0 = alpha
    const scalar_t s = scalar_t(1) / (scalar_t(1) + exp_approx(-p0 * z));
    return p0 * s * (scalar_t(1) - s);
  } else if constexpr (kSurrogate == kAtan) {  // p0 = alpha
    const scalar_t u = scalar_t(M_PI / 2.0) * p0 * z;
    return (p0 / scalar_t(2)) / (scalar_t(1) + u * u);
  } else if constexpr (kSurrogate == kRectangle) {  // p0 = width
    return std::abs(z) < p0 / scalar_t(2) ? scalar_t(1) / p0 : scalar_t(0);
  } else {  // straight-through window [p0, p1]
    return (z >= p0 && z <= p1) ? scalar_t(1) : scalar_t(0);
  }
}

// g, or zero where g is subnormal. Surrogate gradients far from the threshold underflow
// (exp(-alpha z) for large z); a subnormal costs every later CPU op on it a microcode assist
// (a convolution's backward ran 4x slower) and carries no training signal, so backward stores
// and carries zero instead, as the flush-to-zero mode of a GPU would.
template <typename scalar_t>
inline scalar_t flush_subnormal(scalar_t g) {
  return std::abs(g) < std::numeric_limits<scalar_t>::min() ? scalar_t(0) : g;
}

// ---------------------------------------------------------------------------------------------
// LIF (also IF with inv_tau = 0, and parametric LIF with a learnable inv_tau).

// k (1/tau) and v_rest as compute-type scalars, and v_rest and V_th rounded to the storage type
// (rest_s, vth_s). PyTorch's CPU ops on a bfloat16/float16 tensor round a Python scalar to
// the tensor's dtype in add and sub but multiply by it unrounded, so: v - v_rest and H - V_th
// subtract the rounded ones, x k multiplies by the exact one, and the reset's v_reset * S and
// V_th * S round the product.
template <typename scalar_t>
struct LifConstants {
  scalar_t k, rest, rest_s, vth_s;
};

// One step of a neuron, as the generic loops below use it: charge H from the membrane and the
// input, the spike H emits, and the membrane after the reset.
template <typename scalar_t, typename io_t, bool kHard, bool kDecayInput>
struct LifDynamics {
  using value_type = scalar_t;
  LifConstants<scalar_t> c;

  static scalar_t rd(scalar_t a) { return round_to<io_t>(a); }
  scalar_t initial() const { return c.rest_s; }
  scalar_t charge(scalar_t v, scalar_t x) const {
    if constexpr (kDecayInput) {  // v + (x - (v - rest)) * k
      return rd(v + rd(rd(x - rd(v - c.rest_s)) * c.k));
    } else {  // v - (v - rest) * k + x
      return rd(rd(v - rd(rd(v - c.rest_s) * c.k)) + x);
    }
  }
  // H - V_th as the reference computes it (rounded), for the surrogate.
  scalar_t distance(scalar_t h) const { return rd(h - c.vth_s); }
  // The fire test skips that rounding: H and V_th are both io_t values, and rounding to nearest
  // never changes the sign of their difference (nor makes a non-zero one zero: a difference
  // small enough to round away is exact, by Sterbenz, and a multiple of io_t's ulp).
  scalar_t spike(scalar_t h) const { return (h - c.vth_s) >= scalar_t(0) ? scalar_t(1) : scalar_t(0); }
  scalar_t settle(scalar_t h, scalar_t s) const {
    if constexpr (kHard) {
      // The reference's arithmetic, not a select: where H is infinite and fires, H (1 - S) is
      // NaN and the membrane stays NaN, as in the reference loop (and SpikingJelly). A select
      // would reset it to v_rest and let the neuron fire on. With S in {0, 1} and H an io_t
      // value every product and the sum (one term is zero) are exact: no rounding.
      return h * (scalar_t(1) - s) + c.rest_s * s;
    } else {
      return s > scalar_t(0) ? rd(h - c.vth_s) : h;
    }
  }
};

// Forward of any neuron: spikes [T, N] and, when v_out is not null, the final membrane [N].
template <typename io_t, typename Dynamics>
void forward_impl(const io_t* x, const io_t* v_init, io_t* spikes, io_t* v_out,
                  int64_t T, int64_t N, const Dynamics& d) {
  using scalar_t = typename Dynamics::value_type;
  at::parallel_for(0, N, grain_for(T), [&](int64_t begin, int64_t end) {
    const int64_t kBlock = block_for(T);
    std::vector<scalar_t> v(kBlock);
    for (int64_t n0 = begin; n0 < end; n0 += kBlock) {
      const int64_t len = std::min(kBlock, end - n0);
      load_or_fill(v.data(), v_init, n0, len, d.initial());
      for (int64_t t = 0; t < T; ++t) {
        const io_t* xt = x + t * N + n0;
        io_t* st = spikes + t * N + n0;
        for (int64_t i = 0; i < len; ++i) {
          const scalar_t h = d.charge(v[i], static_cast<scalar_t>(xt[i]));
          const scalar_t s = d.spike(h);
          st[i] = exact_to_io<io_t>(s);
          v[i] = d.settle(h, s);
        }
      }
      if (v_out) store(v_out + n0, v.data(), len);
    }
  });
}

// Backward's first pass over one block of `len` neurons from n0: the charged membrane H of
// every step into h_buf ([T, stride]) and, if v_buf is not null, the membrane before each step.
template <typename io_t, typename scalar_t, typename Dynamics>
void recompute_block(const io_t* x, const io_t* v_init, int64_t T, int64_t N, int64_t n0, int64_t len,
                     int64_t stride, scalar_t* v, scalar_t* h_buf, scalar_t* v_buf, const Dynamics& d) {
  load_or_fill(v, v_init, n0, len, d.initial());
  for (int64_t t = 0; t < T; ++t) {
    const io_t* xt = x + t * N + n0;
    scalar_t* ht = h_buf + t * stride;
    if (v_buf) std::memcpy(v_buf + t * stride, v, len * sizeof(scalar_t));
    for (int64_t i = 0; i < len; ++i) {
      const scalar_t h = d.charge(v[i], static_cast<scalar_t>(xt[i]));
      ht[i] = h;
      v[i] = d.settle(h, d.spike(h));
    }
  }
}

// grad_s is never null (the entry point substitutes zeros), so the time loop has no branches but
// the template switches and vectorises; a null grad_v reads as zeros. With kGradK, dL/dk is accumulated per lane
// (a float sum across lanes would need reassociation, which -O3 rightly refuses) and summed in
// double at the end of each block.
template <typename io_t, typename scalar_t, bool kHard, bool kDecayInput, bool kDetach, int64_t kSurrogate,
          bool kGradK>
void lif_backward_impl(const io_t* grad_s, const io_t* grad_v, const io_t* x,
                       const io_t* v_init, io_t* grad_x, io_t* grad_v_init,
                       double* grad_k_partial, int64_t T, int64_t N, LifConstants<scalar_t> c,
                       scalar_t p0, scalar_t p1) {
  const LifDynamics<scalar_t, io_t, kHard, kDecayInput> d{c};
  at::parallel_for(0, N, grain_for(T), [&](int64_t begin, int64_t end) {
    const int64_t kBlock = block_for(T);
    std::vector<scalar_t> h_buf(static_cast<size_t>(T * kBlock));
    // With kGradK: the membrane before each step, v_buf[t] = V_{t-1}.
    std::vector<scalar_t> v_buf(kGradK ? static_cast<size_t>(T * kBlock) : 0);
    std::vector<scalar_t> v(kBlock), gv(kBlock), gk(kGradK ? kBlock : 0);
    double grad_k = 0.0;
    for (int64_t n0 = begin; n0 < end; n0 += kBlock) {
      const int64_t len = std::min(kBlock, end - n0);
      recompute_block(x, v_init, T, N, n0, len, kBlock, v.data(), h_buf.data(), kGradK ? v_buf.data() : nullptr, d);
      load_or_fill(gv.data(), grad_v, n0, len, scalar_t(0));
      if constexpr (kGradK) std::fill(gk.begin(), gk.begin() + len, scalar_t(0));
      // Walk back in time; gv holds dL/dV_t on entry and dL/dV_{t-1} on exit.
      for (int64_t t = T - 1; t >= 0; --t) {
        const scalar_t* ht = h_buf.data() + t * kBlock;
        const io_t* gst = grad_s + t * N + n0;
        const io_t* xt = x + t * N + n0;
        const scalar_t* vp = kGradK ? v_buf.data() + t * kBlock : nullptr;
        io_t* gxt = grad_x + t * N + n0;
        for (int64_t i = 0; i < len; ++i) {
          const scalar_t h = ht[i];
          const scalar_t z = d.distance(h);
          scalar_t ds = static_cast<scalar_t>(gst[i]);
          scalar_t dv_dh = scalar_t(1);
          if constexpr (kHard) {
            dv_dh = z >= scalar_t(0) ? scalar_t(0) : scalar_t(1);
            if constexpr (!kDetach) ds += gv[i] * (c.rest_s - h);
          } else {
            if constexpr (!kDetach) ds -= gv[i] * c.vth_s;
          }
          const scalar_t gh = gv[i] * dv_dh + ds * surrogate_derivative<scalar_t, kSurrogate>(z, p0, p1);
          gxt[i] = to_io<io_t>(flush_subnormal(kDecayInput ? gh * c.k : gh));
          if constexpr (kGradK) {
            const scalar_t dh_dk = kDecayInput ? static_cast<scalar_t>(xt[i]) - (vp[i] - c.rest) : -(vp[i] - c.rest);
            gk[i] += gh * dh_dk;
          }
          gv[i] = flush_subnormal(gh * (scalar_t(1) - c.k));
        }
      }
      if constexpr (kGradK) {
        for (int64_t i = 0; i < len; ++i) grad_k += static_cast<double>(gk[i]);
      }
      if (grad_v_init) store(grad_v_init + n0, gv.data(), len);
    }
    if constexpr (kGradK) grad_k_partial[at::get_thread_num()] += grad_k;
  });
}

// ---------------------------------------------------------------------------------------------
// I-LIF: integer spikes round(clamp(H, 0, D)), soft reset V = H - S.

template <typename scalar_t>
struct IlifConstants {
  scalar_t levels, beta, tau;
};

// round(y) for 0 <= y (the clamped H), half to even like torch.round. Adding and subtracting 2^23 (2^52 for
// double) rounds a non-negative value below that to the nearest integer, ties to even, in the
// default rounding mode, and vectorises where nearbyint would not.
template <typename scalar_t>
inline scalar_t ilif_quantize(scalar_t y) {
  const scalar_t magic = sizeof(scalar_t) == 4 ? scalar_t(8388608.0) : scalar_t(4503599627370496.0);
  return (y + magic) - magic;
}

template <typename scalar_t, typename io_t, bool kTauCharge>
struct IlifDynamics {
  using value_type = scalar_t;
  IlifConstants<scalar_t> c;

  static scalar_t rd(scalar_t a) { return round_to<io_t>(a); }
  scalar_t initial() const { return scalar_t(0); }
  scalar_t charge(scalar_t v, scalar_t x) const {
    if constexpr (kTauCharge) {  // v + (x - v) / tau
      return rd(v + rd(rd(x - v) / c.tau));
    } else {  // beta * v + x
      return rd(rd(c.beta * v) + x);
    }
  }
  scalar_t spike(scalar_t h) const { return rd(ilif_quantize(rd(std::min(std::max(h, scalar_t(0)), c.levels)))); }
  scalar_t settle(scalar_t h, scalar_t s) const { return rd(h - s); }
};

template <typename io_t, typename scalar_t, bool kTauCharge, bool kDetach>
void ilif_backward_impl(const io_t* grad_s, const io_t* grad_v, const io_t* x,
                        const io_t* v_init, io_t* grad_x, io_t* grad_v_init,
                        int64_t T, int64_t N, IlifConstants<scalar_t> c) {
  const IlifDynamics<scalar_t, io_t, kTauCharge> d{c};
  at::parallel_for(0, N, grain_for(T), [&](int64_t begin, int64_t end) {
    const int64_t kBlock = block_for(T);
    std::vector<scalar_t> h_buf(static_cast<size_t>(T * kBlock));
    std::vector<scalar_t> v(kBlock), gv(kBlock);
    for (int64_t n0 = begin; n0 < end; n0 += kBlock) {
      const int64_t len = std::min(kBlock, end - n0);
      recompute_block(x, v_init, T, N, n0, len, kBlock, v.data(), h_buf.data(), static_cast<scalar_t*>(nullptr), d);
      load_or_fill(gv.data(), grad_v, n0, len, scalar_t(0));
      for (int64_t t = T - 1; t >= 0; --t) {
        const scalar_t* ht = h_buf.data() + t * kBlock;
        const io_t* gst = grad_s + t * N + n0;
        io_t* gxt = grad_x + t * N + n0;
        for (int64_t i = 0; i < len; ++i) {
          const scalar_t h = ht[i];
          const bool inside = h >= scalar_t(0) && h <= c.levels;
          scalar_t ds = static_cast<scalar_t>(gst[i]);
          if constexpr (!kDetach) ds -= gv[i];
          const scalar_t gh = gv[i] + (inside ? ds : scalar_t(0));
          if constexpr (kTauCharge) {
            const scalar_t g_in = gh / c.tau;
            gxt[i] = to_io<io_t>(flush_subnormal(g_in));
            gv[i] = flush_subnormal(gh - g_in);
          } else {
            gxt[i] = to_io<io_t>(flush_subnormal(gh));
            gv[i] = flush_subnormal(gh * c.beta);
          }
        }
      }
      if (grad_v_init) store(grad_v_init + n0, gv.data(), len);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Operator entry points: argument checks, then dispatch on dtype and the template switches.

// N of [T, ...] seen as [T, N].
int64_t neurons_per_step(const at::Tensor& x) { return x.size(0) > 0 ? x.numel() / x.size(0) : 0; }

void check_input(const at::Tensor& x, const char* op) {
  TORCH_CHECK(x.device().is_cpu(), op, ": expected a CPU tensor, got ", x.device());
  const auto dtype = x.scalar_type();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble || dtype == at::kBFloat16 || dtype == at::kHalf, op,
              ": expected float32, float64, bfloat16 or float16, got ", dtype);
  TORCH_CHECK(x.dim() >= 1 && x.is_contiguous(), op, ": expected a contiguous [T, ...] tensor");
}

// The optional per-neuron tensor (v_init, grad_v), checked and made contiguous, or undefined.
at::Tensor optional_state(const std::optional<at::Tensor>& t, const at::Tensor& x, const char* what) {
  if (!t.has_value() || !t->defined()) return at::Tensor();
  TORCH_CHECK(t->numel() * x.size(0) == x.numel(), what, " must have x[0]'s ", x.numel() / std::max<int64_t>(x.size(0), 1),
              " elements, got ", t->numel());
  return t->to(x.scalar_type()).contiguous();
}

at::Tensor optional_sequence(const std::optional<at::Tensor>& t, const at::Tensor& x, const char* what) {
  if (!t.has_value() || !t->defined()) return at::Tensor();
  TORCH_CHECK(t->numel() == x.numel(), what, " must match the input's ", x.numel(), " elements, got ", t->numel());
  return t->to(x.scalar_type()).contiguous();
}

at::Tensor zeros_if_undefined(const at::Tensor& t, at::IntArrayRef sizes, const at::Tensor& like) {
  return t.defined() ? t : at::zeros(sizes, like.options());
}

template <typename scalar_t>
scalar_t* ptr_or_null(const at::Tensor& t) {
  return t.defined() && t.numel() > 0 ? t.data_ptr<scalar_t>() : nullptr;
}

// What every forward entry point checks and allocates.
struct ForwardTensors {
  at::Tensor v0, spikes, v_out;  // v0 / v_out may be undefined / empty
  int64_t T, N;
};

ForwardTensors prepare_forward(const at::Tensor& x, const std::optional<at::Tensor>& v_init, bool need_state,
                               const char* op) {
  check_input(x, op);
  const int64_t N = neurons_per_step(x);
  return {optional_state(v_init, x, "v_init"), at::empty_like(x), at::empty({need_state ? N : 0}, x.options()),
          x.size(0), N};
}

// What every backward entry point checks and allocates. An undefined grad_v (the final membrane
// unused) reads as zeros; without v_init there is no grad_v_init to compute.
struct BackwardTensors {
  at::Tensor gs, gv, v0, grad_x, grad_v_init;
  int64_t T, N;
};

BackwardTensors prepare_backward(const std::optional<at::Tensor>& grad_spikes, const std::optional<at::Tensor>& grad_v,
                                 const at::Tensor& x, const std::optional<at::Tensor>& v_init, const char* op) {
  check_input(x, op);
  const int64_t N = neurons_per_step(x);
  at::Tensor v0 = optional_state(v_init, x, "v_init");
  const int64_t n_grad_v_init = v0.defined() ? N : 0;
  return {zeros_if_undefined(optional_sequence(grad_spikes, x, "grad_spikes"), x.sizes(), x),
          optional_state(grad_v, x, "grad_v"), v0, at::empty_like(x), at::empty({n_grad_v_init}, x.options()),
          x.size(0), N};
}

#define SD_BOOL_SWITCH(cond, NAME, ...) \
  if (cond) {                           \
    constexpr bool NAME = true;         \
    __VA_ARGS__();                      \
  } else {                              \
    constexpr bool NAME = false;        \
    __VA_ARGS__();                      \
  }

std::tuple<at::Tensor, at::Tensor> lif_forward(const at::Tensor& x, const std::optional<at::Tensor>& v_init,
                                               double inv_tau, double v_threshold, double v_rest,
                                               bool hard_reset, bool decay_input, bool need_state) {
  const ForwardTensors f = prepare_forward(x, v_init, need_state, "spikedrive::lif_forward");
  const at::Tensor &v0 = f.v0, &spikes = f.spikes, &v_out = f.v_out;
  const int64_t T = f.T, N = f.N;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "lif_forward", [&] {
    using compute_t = at::opmath_type<scalar_t>;
    const LifConstants<compute_t> c{compute_t(inv_tau), compute_t(v_rest), compute_t(scalar_t(v_rest)),
                                    compute_t(scalar_t(v_threshold))};
    SD_BOOL_SWITCH(hard_reset, kHard, [&] {
      SD_BOOL_SWITCH(decay_input, kDecayInput, [&] {
        forward_impl(x.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(v0), spikes.data_ptr<scalar_t>(),
                     ptr_or_null<scalar_t>(v_out), T, N, LifDynamics<compute_t, scalar_t, kHard, kDecayInput>{c});
      });
    });
  });
  return {spikes, v_out};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> lif_backward(
    const std::optional<at::Tensor>& grad_spikes, const std::optional<at::Tensor>& grad_v, const at::Tensor& x,
    const std::optional<at::Tensor>& v_init, double inv_tau, double v_threshold, double v_rest, bool hard_reset,
    bool decay_input, bool detach_reset, int64_t surrogate, double p0, double p1, bool need_grad_inv_tau) {
  const BackwardTensors b = prepare_backward(grad_spikes, grad_v, x, v_init, "spikedrive::lif_backward");
  TORCH_CHECK(surrogate >= kSigmoid && surrogate <= kStraightThrough, "spikedrive::lif_backward: unknown surrogate code ",
              surrogate);
  const at::Tensor &gs = b.gs, &gv = b.gv, &v0 = b.v0, &grad_x = b.grad_x, &grad_v_init = b.grad_v_init;
  const int64_t T = b.T, N = b.N;
  std::vector<double> partial(static_cast<size_t>(at::get_num_threads()), 0.0);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "lif_backward", [&] {
    using compute_t = at::opmath_type<scalar_t>;
    const LifConstants<compute_t> c{compute_t(inv_tau), compute_t(v_rest), compute_t(scalar_t(v_rest)),
                                    compute_t(scalar_t(v_threshold))};
    auto run = [&](auto surrogate_tag) {
      constexpr int64_t kSurrogate = decltype(surrogate_tag)::value;
      SD_BOOL_SWITCH(hard_reset, kHard, [&] {
        SD_BOOL_SWITCH(decay_input, kDecayInput, [&] {
          SD_BOOL_SWITCH(detach_reset, kDetach, [&] {
            SD_BOOL_SWITCH(need_grad_inv_tau, kGradK, [&] {
              lif_backward_impl<scalar_t, compute_t, kHard, kDecayInput, kDetach, kSurrogate, kGradK>(
                  gs.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(gv), x.data_ptr<scalar_t>(),
                  ptr_or_null<scalar_t>(v0), grad_x.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(grad_v_init),
                  partial.data(), T, N, c, compute_t(p0), compute_t(p1));
            });
          });
        });
      });
    };
    switch (surrogate) {
      case kSigmoid: run(std::integral_constant<int64_t, kSigmoid>{}); break;
      case kAtan: run(std::integral_constant<int64_t, kAtan>{}); break;
      case kRectangle: run(std::integral_constant<int64_t, kRectangle>{}); break;
      default: run(std::integral_constant<int64_t, kStraightThrough>{}); break;
    }
  });
  double grad_k = 0.0;
  for (double p : partial) grad_k += p;
  // In the compute type: a whole layer's sum would overflow float16 (and lose digits in bfloat16).
  return {grad_x, grad_v_init, at::scalar_tensor(grad_k, x.options().dtype(at::toOpMathType(x.scalar_type())))};
}

std::tuple<at::Tensor, at::Tensor> ilif_forward(const at::Tensor& x, const std::optional<at::Tensor>& v_init,
                                                int64_t levels, double beta, double tau, bool tau_charge,
                                                bool need_state) {
  const ForwardTensors f = prepare_forward(x, v_init, need_state, "spikedrive::ilif_forward");
  const at::Tensor &v0 = f.v0, &spikes = f.spikes, &v_out = f.v_out;
  const int64_t T = f.T, N = f.N;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "ilif_forward", [&] {
    using compute_t = at::opmath_type<scalar_t>;
    const IlifConstants<compute_t> c{compute_t(levels), compute_t(beta), compute_t(tau)};
    SD_BOOL_SWITCH(tau_charge, kTauCharge, [&] {
      forward_impl(x.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(v0), spikes.data_ptr<scalar_t>(),
                   ptr_or_null<scalar_t>(v_out), T, N, IlifDynamics<compute_t, scalar_t, kTauCharge>{c});
    });
  });
  return {spikes, v_out};
}

std::tuple<at::Tensor, at::Tensor> ilif_backward(const std::optional<at::Tensor>& grad_spikes,
                                                 const std::optional<at::Tensor>& grad_v, const at::Tensor& x,
                                                 const std::optional<at::Tensor>& v_init, int64_t levels, double beta,
                                                 double tau, bool tau_charge, bool detach_reset) {
  const BackwardTensors b = prepare_backward(grad_spikes, grad_v, x, v_init, "spikedrive::ilif_backward");
  const at::Tensor &gs = b.gs, &gv = b.gv, &v0 = b.v0, &grad_x = b.grad_x, &grad_v_init = b.grad_v_init;
  const int64_t T = b.T, N = b.N;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "ilif_backward", [&] {
    using compute_t = at::opmath_type<scalar_t>;
    const IlifConstants<compute_t> c{compute_t(levels), compute_t(beta), compute_t(tau)};
    SD_BOOL_SWITCH(tau_charge, kTauCharge, [&] {
      SD_BOOL_SWITCH(detach_reset, kDetach, [&] {
        ilif_backward_impl<scalar_t, compute_t, kTauCharge, kDetach>(gs.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(gv),
                                                          x.data_ptr<scalar_t>(), ptr_or_null<scalar_t>(v0),
                                                          grad_x.data_ptr<scalar_t>(),
                                                          ptr_or_null<scalar_t>(grad_v_init), T, N, c);
      });
    });
  });
  return {grad_x, grad_v_init};
}

}  // namespace

TORCH_LIBRARY(spikedrive_cpu, m) {
  m.def("lif_forward(Tensor x, Tensor? v_init, float inv_tau, float v_threshold, float v_rest, bool hard_reset, "
        "bool decay_input, bool need_state) -> (Tensor, Tensor)", &lif_forward);
  m.def("lif_backward(Tensor? grad_spikes, Tensor? grad_v, Tensor x, Tensor? v_init, float inv_tau, "
        "float v_threshold, float v_rest, bool hard_reset, bool decay_input, bool detach_reset, int surrogate, "
        "float p0, float p1, bool need_grad_inv_tau) -> (Tensor, Tensor, Tensor)", &lif_backward);
  m.def("ilif_forward(Tensor x, Tensor? v_init, int levels, float beta, float tau, bool tau_charge, "
        "bool need_state) -> (Tensor, Tensor)",
        &ilif_forward);
  m.def("ilif_backward(Tensor? grad_spikes, Tensor? grad_v, Tensor x, Tensor? v_init, int levels, float beta, "
        "float tau, bool tau_charge, bool detach_reset) -> (Tensor, Tensor)", &ilif_backward);
}
