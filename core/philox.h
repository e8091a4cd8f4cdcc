// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// Counter-based: the i-th random number depends only on (seed, i), so a CPU loop and a CUDA
// kernel produce the same numbers in any order. Header-only, usable from host and device.
//
// Convention used by every ember generator: element i of a fill draws from the 128-bit block
// counter = (offset + i / 4, 0, 0, 0) with key = (seed lo, seed hi), taking word i % 4.
// Normals use Box-Muller on the pair of words (2k, 2k+1) of that block.
//
// Bit-identical on CPU and CUDA: Box-Muller's log, sin and cos are computed below from
// operations IEEE 754 rounds exactly (+, *, /, sqrt, fma, rint), because logf/sinf/cosf
// differ in the last bit between glibc and CUDA's libdevice. Callers combining the results
// (lo + (hi - lo) * u) must keep the multiply and add separate on the device (__fmul_rn,
// __fadd_rn), as a CPU without FMA contraction does.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define EMBER_HD __host__ __device__ __forceinline__
#else
#define EMBER_HD inline
#endif

namespace ember::philox {

struct U4 {
  uint32_t x, y, z, w;
};

EMBER_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Ten rounds of the Philox4x32 bijection.
EMBER_HD U4 philox4x32_10(U4 c, uint32_t k0, uint32_t k1) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
  constexpr uint32_t W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(M0, c.x, &hi0);
    uint32_t lo1 = mulhilo(M1, c.z, &hi1);
    c = U4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += W0;
    k1 += W1;
  }
  return c;
}

EMBER_HD U4 block(uint64_t seed, uint64_t counter) {
  U4 c{static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32), 0u, 0u};
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

EMBER_HD uint32_t word(const U4& b, int i) { return i == 0 ? b.x : i == 1 ? b.y : i == 2 ? b.z : b.w; }

// A uniform float in (0, 1]: 24 random bits, never exactly 0 (safe for log in Box-Muller).
EMBER_HD float to_unit(uint32_t r) { return (static_cast<float>(r >> 8) + 1.0f) * (1.0f / 16777216.0f); }

// Uniform element i in (0, 1].
EMBER_HD float uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 b = block(seed, offset + i / 4);
  return to_unit(word(b, static_cast<int>(i % 4)));
}

EMBER_HD uint32_t float_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

EMBER_HD float bits_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// ln(u) for a normal float u in (0, 1], within about 1 ulp (fdlibm's reduction):
// u = 2^e m with m in [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) = 2s (1 + s^2/3 + s^4/5 + ...),
// s = (m - 1) / (m + 1), |s| < 0.172 so four terms reach float precision.
EMBER_HD float log_unit(float u) {
  uint32_t bits = float_bits(u);
  int e = static_cast<int>(bits >> 23) - 127;
  float m = bits_float((bits & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
  if (m > 1.41421356f) {
    m *= 0.5f;  // exact
    e += 1;
  }
  float f = m - 1.0f;  // exact (Sterbenz)
  float s = f / (2.0f + f);
  float z = s * s;
  float q = fmaf(z, 1.0f / 9.0f, 1.0f / 7.0f);
  q = fmaf(z, q, 1.0f / 5.0f);
  q = fmaf(z, q, 1.0f / 3.0f);
  float two_s = 2.0f * s;
  float log_m = fmaf(two_s, z * q, two_s);
  const float ln2_hi = 6.9313812256e-01f, ln2_lo = 9.0580006145e-06f;  // ln2_hi * e is exact
  float ef = static_cast<float>(e);
  return fmaf(ef, ln2_hi, fmaf(ef, ln2_lo, log_m));
}

// sin and cos of 2*pi*u for u in [0, 1]: 4u = q + f exactly (q integer, |f| <= 1/2), so the
// angle is q quarter turns plus a = f*pi/2, |a| <= pi/4, where Taylor series to a^9 / a^10 reach
// float precision.
EMBER_HD void sincos_turn(float u, float* sin_out, float* cos_out) {
  float x = 4.0f * u;  // exact
  float q = rintf(x);
  float a = (x - q) * 1.57079632679489662f;
  float z = a * a;
  float ps = fmaf(z, 1.0f / 362880.0f, -1.0f / 5040.0f);
  ps = fmaf(z, ps, 1.0f / 120.0f);
  ps = fmaf(z, ps, -1.0f / 6.0f);
  float sa = fmaf(a * z, ps, a);
  float pc = fmaf(z, -1.0f / 3628800.0f, 1.0f / 40320.0f);
  pc = fmaf(z, pc, -1.0f / 720.0f);
  pc = fmaf(z, pc, 1.0f / 24.0f);
  pc = fmaf(z, pc, -0.5f);
  float ca = fmaf(z, pc, 1.0f);
  switch (static_cast<int>(q) & 3) {
    case 0: *sin_out = sa, *cos_out = ca; break;
    case 1: *sin_out = ca, *cos_out = -sa; break;
    case 2: *sin_out = -sa, *cos_out = -ca; break;
    default: *sin_out = -ca, *cos_out = sa; break;
  }
}

// Standard normal element i (Box-Muller; the pair (2k, 2k+1) gives cos and sin branches).
EMBER_HD float normal(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 b = block(seed, offset + i / 4);
  int pair = static_cast<int>((i % 4) / 2);
  float u1 = to_unit(word(b, 2 * pair));
  float u2 = to_unit(word(b, 2 * pair + 1));
  float r = sqrtf(-2.0f * log_unit(u1));
  float s, c;
  sincos_turn(u2, &s, &c);
  return (i % 2 == 0) ? r * c : r * s;
}

}  // namespace ember::philox
