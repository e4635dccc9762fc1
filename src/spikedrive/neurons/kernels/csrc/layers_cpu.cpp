// Channels-last batch norm (training statistics) and spike max-pooling on the CPU.
//
// Both exist because PyTorch's CPU kernels are slow on the layouts a spiking network feeds them:
// batch norm over the last dim of a [M, C] token matrix walks each channel with a stride of C
// (its "contiguous" path treats C as the plane count), and the channels-last max-pool keeps an
// int64 index per output and zero-fills its gradient in a separate pass. Here:
//
//  * bn_last_forward / bn_last_backward: x is [M, C] contiguous (tokens, or an NHWC image batch
//    flattened to rows). Threads split the channels in blocks of 16; inside a block the loop
//    runs along rows, so each row segment is contiguous and the per-channel sums vectorise.
//    Statistics and gradients accumulate in at::opmath_type (float for bfloat16 / float16), the
//    mean first and then the centred sum of squares, as PyTorch's own CPU kernel does.
//  * spike_max_pool_forward / backward: x is [N, H, W, C] contiguous (an NCHW tensor in
//    channels-last memory). The argmax is kept as the window offset in one byte. Ties and NaN
//    follow PyTorch's kernel exactly (the first maximum in row-major window order wins; a NaN
//    always replaces), and the backward adds each output's gradient into its argmax in the same
//    output order, so values, indices and gradients are bit-identical to torch.max_pool2d's.

#include <ATen/ATen.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "cpu_io.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// Rows per chunk of the statistics passes. Each chunk sums its rows into its own row of
// partial sums, and the partials are added in chunk order afterwards: every pass reads rows
// contiguously (vectorised over channels), threads take whole chunks, and the result does not
// depend on the number of threads.
constexpr int64_t kRowChunk = 128;

void check_rows(const at::Tensor& x, const char* who) {
  TORCH_CHECK(x.device().is_cpu(), who, ": expected a CPU tensor");
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), who, ": expected a contiguous [M, C] tensor, got sizes ",
              x.sizes(), " strides ", x.strides());
  TORCH_CHECK(x.size(0) > 0, who, ": expected at least one row");
}

// out[c] = sum over rows m of f(m, c), for `count` functions at once (f writes its terms into
// acc[k][c] for k < count): chunked as described at kRowChunk.
template <int count, typename acc_t, typename F>
void column_sums(int64_t M, int64_t C, acc_t* const (&out)[count], const F& f) {
  const int64_t chunks = (M + kRowChunk - 1) / kRowChunk;
  std::vector<acc_t> partial(static_cast<size_t>(chunks * count * C), acc_t(0));
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(kRowChunk * C, 1));
  at::parallel_for(0, chunks, grain, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      acc_t* acc[count];
      for (int i = 0; i < count; ++i) acc[i] = partial.data() + (k * count + i) * C;
      const int64_t m1 = std::min(M, (k + 1) * kRowChunk);
      for (int64_t m = k * kRowChunk; m < m1; ++m) f(m, acc);
    }
  });
  for (int i = 0; i < count; ++i) {
    acc_t* o = out[i];
    std::fill(o, o + C, acc_t(0));
    for (int64_t k = 0; k < chunks; ++k) {
      const acc_t* p = partial.data() + (k * count + i) * C;
      for (int64_t c = 0; c < C; ++c) o[c] += p[c];
    }
  }
}

// f(m) for every row m, rows split between threads.
template <typename F>
void for_rows(int64_t M, int64_t C, const F& f) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 15) / std::max<int64_t>(C, 1));
  at::parallel_for(0, M, grain, [&](int64_t m0, int64_t m1) {
    for (int64_t m = m0; m < m1; ++m) f(m);
  });
}

// y = x * scale + shift with per-channel scale = w / sqrt(var + eps), shift = b - mean * scale;
// returns (y, mean, biased var, invstd), the statistics in the compute type. The variance is
// the mean of squared deviations from the mean (a second pass), as in PyTorch's CPU kernel.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> bn_last_forward(const at::Tensor& x,
                                                                           const std::optional<at::Tensor>& weight,
                                                                           const std::optional<at::Tensor>& bias,
                                                                           double eps) {
  check_rows(x, "spikedrive::bn_last_forward");
  const int64_t M = x.size(0), C = x.size(1);
  const auto stat_type = at::toOpMathType(x.scalar_type());
  auto opts = x.options().dtype(stat_type);
  at::Tensor mean = at::empty({C}, opts), var = at::empty({C}, opts), invstd = at::empty({C}, opts);
  at::Tensor y = at::empty_like(x);
  // Affine parameters as the compute type (they may be float32 beside a bfloat16 input).
  at::Tensor w = weight.has_value() && weight->defined() ? weight->to(stat_type).contiguous() : at::ones({C}, opts);
  at::Tensor b = bias.has_value() && bias->defined() ? bias->to(stat_type).contiguous() : at::zeros({C}, opts);
  TORCH_CHECK(w.numel() == C && b.numel() == C, "spikedrive::bn_last_forward: weight and bias need ", C, " elements");
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "bn_last_forward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    acc_t *mp = mean.data_ptr<acc_t>(), *vp = var.data_ptr<acc_t>(), *ip = invstd.data_ptr<acc_t>();
    const acc_t *wp = w.data_ptr<acc_t>(), *bp = b.data_ptr<acc_t>();
    acc_t* const sums[1] = {mp};
    column_sums<1>(M, C, sums, [&](int64_t m, acc_t* const* acc) {
      const scalar_t* __restrict__ row = xp + m * C;
      acc_t* __restrict__ s = acc[0];
      for (int64_t c = 0; c < C; ++c) s[c] += static_cast<acc_t>(row[c]);
    });
    for (int64_t c = 0; c < C; ++c) mp[c] /= static_cast<acc_t>(M);
    acc_t* const squares[1] = {vp};
    column_sums<1>(M, C, squares, [&](int64_t m, acc_t* const* acc) {
      const scalar_t* __restrict__ row = xp + m * C;
      acc_t* __restrict__ s = acc[0];
      for (int64_t c = 0; c < C; ++c) {
        const acc_t d = static_cast<acc_t>(row[c]) - mp[c];
        s[c] += d * d;
      }
    });
    std::vector<acc_t> scale(C), shift(C);
    for (int64_t c = 0; c < C; ++c) {
      vp[c] /= static_cast<acc_t>(M);
      ip[c] = acc_t(1) / std::sqrt(vp[c] + static_cast<acc_t>(eps));
      scale[c] = wp[c] * ip[c];
      shift[c] = bp[c] - mp[c] * scale[c];
    }
    const acc_t *sc = scale.data(), *sh = shift.data();
    for_rows(M, C, [&](int64_t m) {
      const scalar_t* __restrict__ row = xp + m * C;
      scalar_t* __restrict__ out = yp + m * C;
      for (int64_t c = 0; c < C; ++c) out[c] = to_io<scalar_t>(static_cast<acc_t>(row[c]) * sc[c] + sh[c]);
    });
  });
  return {y, mean, var, invstd};
}

// Gradients of bn_last_forward's y (training statistics):
//   grad_b = sum g, grad_w = invstd * sum g (x - mean),
//   grad_x = w invstd (g - sum g / M - (x - mean) invstd^2 sum g (x - mean) / M).
// grad_x is undefined unless need_input.
std::tuple<at::Tensor, at::Tensor, at::Tensor> bn_last_backward(const at::Tensor& grad_y, const at::Tensor& x,
                                                                const at::Tensor& mean, const at::Tensor& invstd,
                                                                const std::optional<at::Tensor>& weight,
                                                                bool need_input) {
  check_rows(x, "spikedrive::bn_last_backward");
  TORCH_CHECK(grad_y.sizes() == x.sizes() && grad_y.scalar_type() == x.scalar_type(),
              "spikedrive::bn_last_backward: grad_y must match x");
  const at::Tensor g = grad_y.contiguous();
  const int64_t M = x.size(0), C = x.size(1);
  const auto stat_type = at::toOpMathType(x.scalar_type());
  auto opts = x.options().dtype(stat_type);
  TORCH_CHECK(mean.scalar_type() == stat_type && invstd.scalar_type() == stat_type && mean.numel() == C &&
                  invstd.numel() == C,
              "spikedrive::bn_last_backward: mean and invstd must be ", C, " values of the compute type");
  at::Tensor w = weight.has_value() && weight->defined() ? weight->to(stat_type).contiguous() : at::ones({C}, opts);
  at::Tensor grad_w = at::empty({C}, opts), grad_b = at::empty({C}, opts);
  at::Tensor grad_x = need_input ? at::empty_like(x) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "bn_last_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t *xp = x.data_ptr<scalar_t>(), *gp = g.data_ptr<scalar_t>();
    const acc_t *mp = mean.data_ptr<acc_t>(), *ip = invstd.data_ptr<acc_t>(), *wp = w.data_ptr<acc_t>();
    acc_t *gwp = grad_w.data_ptr<acc_t>(), *gbp = grad_b.data_ptr<acc_t>();
    acc_t* const sums[2] = {gbp, gwp};  // sum g, then sum g (x - mean)
    column_sums<2>(M, C, sums, [&](int64_t m, acc_t* const* acc) {
      const scalar_t* __restrict__ xr = xp + m * C;
      const scalar_t* __restrict__ gr = gp + m * C;
      acc_t* __restrict__ sum_g = acc[0];
      acc_t* __restrict__ dot = acc[1];
      for (int64_t c = 0; c < C; ++c) {
        const acc_t gv = static_cast<acc_t>(gr[c]);
        sum_g[c] += gv;
        dot[c] += gv * (static_cast<acc_t>(xr[c]) - mp[c]);
      }
    });
    // grad_x = g * k_g + x * k_x + k_c
    std::vector<acc_t> k_g(C), k_x(C), k_c(C);
    for (int64_t c = 0; c < C; ++c) {
      const acc_t is = ip[c], dot = gwp[c];
      k_g[c] = wp[c] * is;
      k_x[c] = -k_g[c] * is * is * dot / static_cast<acc_t>(M);
      k_c[c] = -k_g[c] * gbp[c] / static_cast<acc_t>(M) - k_x[c] * mp[c];
      gwp[c] = dot * is;
    }
    if (!need_input) return;
    scalar_t* gxp = grad_x.data_ptr<scalar_t>();
    const acc_t *kg = k_g.data(), *kx = k_x.data(), *kc = k_c.data();
    for_rows(M, C, [&](int64_t m) {
      const scalar_t* __restrict__ xr = xp + m * C;
      const scalar_t* __restrict__ gr = gp + m * C;
      scalar_t* __restrict__ out = gxp + m * C;
      for (int64_t c = 0; c < C; ++c) {
        out[c] = to_io<scalar_t>(static_cast<acc_t>(gr[c]) * kg[c] + static_cast<acc_t>(xr[c]) * kx[c] + kc[c]);
      }
    });
  });
  return {grad_x, grad_w, grad_b};
}

struct PoolGeometry {
  int64_t N, H, W, C, Ho, Wo, k, s, p;
};

PoolGeometry pool_geometry(const at::Tensor& x, int64_t kernel, int64_t stride, int64_t padding, const char* who) {
  TORCH_CHECK(x.device().is_cpu(), who, ": expected a CPU tensor");
  TORCH_CHECK(x.dim() == 4 && x.is_contiguous(), who, ": expected a contiguous [N, H, W, C] tensor");
  TORCH_CHECK(kernel >= 1 && kernel <= 15 && stride >= 1 && padding >= 0 && 2 * padding <= kernel, who,
              ": unsupported kernel ", kernel, ", stride ", stride, ", padding ", padding);
  PoolGeometry g{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0, kernel, stride, padding};
  g.Ho = (g.H + 2 * padding - kernel) / stride + 1;
  g.Wo = (g.W + 2 * padding - kernel) / stride + 1;
  TORCH_CHECK(g.Ho >= 1 && g.Wo >= 1, who, ": input ", g.H, "x", g.W, " is smaller than the window");
  return g;
}

// One output pixel: the window's elements in row-major order over all C channels, the first
// valid one as the start (PyTorch starts from -inf with that index, which gives the same result:
// only a greater value or a NaN moves it). best / arg are C-long scratch rows.
template <typename scalar_t>
inline void pool_pixel(const scalar_t* __restrict__ xp, scalar_t* __restrict__ yr, uint8_t* __restrict__ ar,
                       at::opmath_type<scalar_t>* __restrict__ best, int32_t* __restrict__ arg,
                       const PoolGeometry& g, int64_t n, int64_t h0, int64_t w0) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t C = g.C;
  const int64_t ha = std::max<int64_t>(h0, 0), hb = std::min<int64_t>(h0 + g.k, g.H);
  const int64_t wa = std::max<int64_t>(w0, 0), wb = std::min<int64_t>(w0 + g.k, g.W);
  const scalar_t* first = xp + ((n * g.H + ha) * g.W + wa) * C;
  const int32_t first_offset = static_cast<int32_t>((ha - h0) * g.k + (wa - w0));
  for (int64_t c = 0; c < C; ++c) {
    best[c] = static_cast<acc_t>(first[c]);
    arg[c] = first_offset;
  }
  for (int64_t h = ha; h < hb; ++h) {
    for (int64_t w = (h == ha ? wa + 1 : wa); w < wb; ++w) {
      const int32_t offset = static_cast<int32_t>((h - h0) * g.k + (w - w0));
      const scalar_t* xr = xp + ((n * g.H + h) * g.W + w) * C;
      for (int64_t c = 0; c < C; ++c) {
        const acc_t v = static_cast<acc_t>(xr[c]);
        const bool take = (v > best[c]) || (v != v);
        best[c] = take ? v : best[c];
        arg[c] = take ? offset : arg[c];
      }
    }
  }
  for (int64_t c = 0; c < C; ++c) yr[c] = static_cast<scalar_t>(best[c]);  // a value of scalar_t: exact
  for (int64_t c = 0; c < C; ++c) ar[c] = static_cast<uint8_t>(arg[c]);
}

// x [N, H, W, C] -> (y [N, Ho, Wo, C], argmax [N, Ho, Wo, C] as the offset kh * k + kw in the
// window, uint8). No ceil mode, no dilation.
std::tuple<at::Tensor, at::Tensor> spike_max_pool_forward(const at::Tensor& x, int64_t kernel, int64_t stride,
                                                          int64_t padding) {
  const PoolGeometry g = pool_geometry(x, kernel, stride, padding, "spikedrive::spike_max_pool_forward");
  at::Tensor y = at::empty({g.N, g.Ho, g.Wo, g.C}, x.options());
  at::Tensor arg = at::empty({g.N, g.Ho, g.Wo, g.C}, x.options().dtype(at::kByte));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "spike_max_pool_forward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    uint8_t* ap = arg.data_ptr<uint8_t>();
    at::parallel_for(0, g.N * g.Ho, 1, [&](int64_t r0, int64_t r1) {
      std::vector<acc_t> best(g.C);
      std::vector<int32_t> arg_row(g.C);
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r / g.Ho, oh = r % g.Ho;
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t out = ((n * g.Ho + oh) * g.Wo + ow) * g.C;
          pool_pixel(xp, yp + out, ap + out, best.data(), arg_row.data(), g, n, oh * g.s - g.p, ow * g.s - g.p);
        }
      }
    });
  });
  return {y, arg};
}

// grad_x [N, H, W, C]: each output's gradient added into its argmax, outputs taken in row-major
// order (PyTorch's order, so overlapping windows sum in the same order).
at::Tensor spike_max_pool_backward(const at::Tensor& grad_y, const at::Tensor& arg, int64_t H, int64_t W,
                                   int64_t kernel, int64_t stride, int64_t padding) {
  TORCH_CHECK(grad_y.dim() == 4 && arg.dim() == 4 && arg.scalar_type() == at::kByte && arg.is_contiguous() &&
                  grad_y.sizes() == arg.sizes(),
              "spikedrive::spike_max_pool_backward: grad_y and argmax must be [N, Ho, Wo, C]");
  TORCH_CHECK(kernel >= 1 && kernel <= 15, "spikedrive::spike_max_pool_backward: unsupported kernel ", kernel);
  const at::Tensor gy = grad_y.contiguous();
  const int64_t N = gy.size(0), Ho = gy.size(1), Wo = gy.size(2), C = gy.size(3);
  at::Tensor grad_x = at::empty({N, H, W, C}, gy.options());
  // Element offset of each window position from the window's top-left corner.
  int64_t delta[15 * 15];
  for (int64_t o = 0; o < kernel * kernel; ++o) delta[o] = ((o / kernel) * W + o % kernel) * C;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, gy.scalar_type(), "spike_max_pool_backward", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const scalar_t* gp = gy.data_ptr<scalar_t>();
    const uint8_t* ap = arg.data_ptr<uint8_t>();
    scalar_t* xp = grad_x.data_ptr<scalar_t>();
    at::parallel_for(0, N, 1, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        scalar_t* img = xp + n * H * W * C;
        std::memset(static_cast<void*>(img), 0, H * W * C * sizeof(scalar_t));  // +0.0 in every float type
        for (int64_t oh = 0; oh < Ho; ++oh) {
          for (int64_t ow = 0; ow < Wo; ++ow) {
            const int64_t out = ((n * Ho + oh) * Wo + ow) * C;
            // The corner may lie in the padding (a negative index); every argmax points inside.
            const int64_t corner = ((oh * stride - padding) * W + (ow * stride - padding)) * C;
            for (int64_t c = 0; c < C; ++c) {
              scalar_t& dst = img[corner + delta[ap[out + c]] + c];
              dst = static_cast<scalar_t>(static_cast<acc_t>(dst) + static_cast<acc_t>(gp[out + c]));
            }
          }
        }
      }
    });
  });
  return grad_x;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(spikedrive_cpu, m) {
  m.def("bn_last_forward(Tensor x, Tensor? weight, Tensor? bias, float eps) -> (Tensor, Tensor, Tensor, Tensor)",
        &bn_last_forward);
  m.def("bn_last_backward(Tensor grad_y, Tensor x, Tensor mean, Tensor invstd, Tensor? weight, bool need_input) "
        "-> (Tensor, Tensor, Tensor)",
        &bn_last_backward);
  m.def("spike_max_pool_forward(Tensor x, int kernel, int stride, int padding) -> (Tensor, Tensor)",
        &spike_max_pool_forward);
  m.def("spike_max_pool_backward(Tensor grad_y, Tensor argmax, int H, int W, int kernel, int stride, int padding) "
        "-> Tensor",
        &spike_max_pool_backward);
}
