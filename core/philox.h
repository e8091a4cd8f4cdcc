// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
// Counter-based: the i-th random number depends only on (seed, i), so a CPU loop and a CUDA
// kernel produce the same numbers in any order. Header-only, usable from host and device.
//
// Convention used by every ember generator: element i of a fill draws from the 128-bit block
// counter = (offset + i / 4, 0, 0, 0) with key = (seed lo, seed hi), taking word i % 4.
// Normals use Box-Muller on the pair of words (2k, 2k+1) of that block.
#pragma once
#include <cmath>
#include <cstdint>

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

// Standard normal element i (Box-Muller; the pair (2k, 2k+1) gives cos and sin branches).
EMBER_HD float normal(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 b = block(seed, offset + i / 4);
  int pair = static_cast<int>((i % 4) / 2);
  float u1 = to_unit(word(b, 2 * pair));
  float u2 = to_unit(word(b, 2 * pair + 1));
  float r = sqrtf(-2.0f * logf(u1));
  float theta = 6.2831853071795864f * u2;
  return (i % 2 == 0) ? r * cosf(theta) : r * sinf(theta);
}

}  // namespace ember::philox
