// Storage-type helpers shared by the CPU kernels: rounding float to bfloat16 on the bits, so the
// loops that use them vectorise.
#pragma once

#include <c10/util/BFloat16.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace {

// float a rounded to the nearest bfloat16, ties to even, and kept as a float: add the rounding
// bias and clear the low 16 bits. Written on the bits and branch-free, so the loops that use it
// vectorise. A NaN stays NaN.
inline float round_bf16(float a) {
  uint32_t u;
  std::memcpy(&u, &a, sizeof(u));
  const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  float out;
  std::memcpy(&out, &r, sizeof(out));
  return a != a ? a : out;
}

// a rounded to io_t and back: a no-op when the two types are one.
template <typename io_t, typename scalar_t>
inline scalar_t round_to(scalar_t a) {
  if constexpr (std::is_same_v<io_t, scalar_t>) {
    return a;
  } else if constexpr (std::is_same_v<io_t, c10::BFloat16>) {
    return round_bf16(a);
  } else {
    return static_cast<scalar_t>(static_cast<io_t>(a));
  }
}

// a, already a value of io_t (a spike), in the storage type: for bfloat16 its top 16 bits.
template <typename io_t, typename scalar_t>
inline io_t exact_to_io(scalar_t a) {
  if constexpr (std::is_same_v<io_t, c10::BFloat16>) {
    uint32_t u;
    std::memcpy(&u, &a, sizeof(u));
    return c10::BFloat16(static_cast<uint16_t>(a != a ? 0x7FC0u : u >> 16), c10::BFloat16::from_bits());
  } else {
    return static_cast<io_t>(a);
  }
}

// a in the storage type, rounded to nearest even.
template <typename io_t, typename scalar_t>
inline io_t to_io(scalar_t a) {
  if constexpr (std::is_same_v<io_t, c10::BFloat16>) {
    return exact_to_io<io_t>(round_bf16(a));
  } else {
    return static_cast<io_t>(a);
  }
}

}  // namespace
