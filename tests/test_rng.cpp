// Philox4x32-10 and the Generator: the reference known-answer vectors, the uniform and normal
// mappings, moments of 1e5 draws, reproducibility and non-overlapping counter ranges.
#include <catch2/catch.hpp>
#include <cmath>
#include <set>

#include "core/philox.h"
#include "tests/harness.h"

using namespace ember;

namespace {
bool equal(const philox::U4& a, const philox::U4& b) { return a.x == b.x && a.y == b.y && a.z == b.z && a.w == b.w; }

struct Moments {
  double mean = 0, var = 0, skew = 0;
};
Moments moments(const std::vector<float>& v) {
  Moments m;
  for (float x : v) m.mean += x;
  m.mean /= v.size();
  for (float x : v) {
    double d = x - m.mean;
    m.var += d * d;
    m.skew += d * d * d;
  }
  m.var /= v.size();
  m.skew /= v.size() * std::pow(m.var, 1.5);
  return m;
}
}  // namespace

TEST_CASE("rng: Philox4x32-10 matches the Random123 known-answer vectors", "[rng]") {
  // Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter[4], key[2] -> out[4].
  CHECK(equal(philox::philox4x32_10({0, 0, 0, 0}, 0, 0), {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  CHECK(equal(philox::philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, 0xffffffff, 0xffffffff),
              {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  CHECK(equal(philox::philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, 0xa4093822, 0x299f31d0),
              {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
  // block() fills counter words 0-1 from a 64-bit counter and the key from the 64-bit seed.
  CHECK(equal(philox::block(0, 0), {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  CHECK(equal(philox::block(0x299f31d0a4093822ull, 0x85a308d3243f6a88ull),
              philox::philox4x32_10({0x243f6a88, 0x85a308d3, 0, 0}, 0xa4093822, 0x299f31d0)));
}

TEST_CASE("rng: the unit mapping is above 0 and at most 1", "[rng]") {
  CHECK(philox::to_unit(0) > 0.f);
  CHECK(philox::to_unit(0) == 1.f / 16777216.f);
  CHECK(philox::to_unit(0xffffffffu) == 1.f);
  CHECK(philox::to_unit(0x80000000u) == Approx(0.5).margin(1e-7));
}

TEST_CASE("rng: uniform fills are element-for-element Philox words", "[rng]") {
  Generator gen(12345);
  gen.advance(9);  // start at block 3
  Tensor u = rand_uniform(Shape{11}, gen, Device::CPU, -2.f, 3.f);
  std::vector<float> v = u.to_vector();
  for (int i = 0; i < 11; ++i) {
    philox::U4 b = philox::block(12345, 3 + i / 4);
    CHECK(v[i] == -2.f + 5.f * philox::to_unit(philox::word(b, i % 4)));
  }
}

TEST_CASE("rng: 1e5 uniforms have the moments of the uniform distribution", "[rng]") {
  Generator gen(7);
  std::vector<float> v = rand_uniform(Shape{100000}, gen).to_vector();
  int outside = 0;
  for (float x : v) outside += !(x > 0.f && x <= 1.f);
  CHECK(outside == 0);
  Moments m = moments(v);
  // Bounds are 5 standard errors for n = 1e5: sd(mean) = sqrt(1/12/n) = 9.1e-4;
  // sd(var) = sqrt((mu4 - sigma^4)/n) = sqrt((1/80 - 1/144)/n) = 2.4e-4; sd(skew) = sqrt(6/n)
  // is an upper bound (exact for normals; smaller for the light-tailed uniform) = 7.7e-3.
  CHECK(std::abs(m.mean - 0.5) < 5 * 9.1e-4);
  CHECK(std::abs(m.var - 1.0 / 12) < 5 * 2.4e-4);
  CHECK(std::abs(m.skew) < 5 * 7.7e-3);
  // Each tenth of (0, 1] holds n/10 draws; binomial sd = sqrt(n * 0.1 * 0.9) = 95.
  std::vector<int> bins(10, 0);
  for (float x : v) ++bins[std::min(9, static_cast<int>((x - 1e-7f) * 10))];
  for (int b : bins) CHECK(std::abs(b - 10000) < 5 * 95);
}

TEST_CASE("rng: 1e5 normals have the moments of the standard normal, pairs uncorrelated", "[rng]") {
  Generator gen(8);
  std::vector<float> v = randn(Shape{100000}, gen).to_vector();
  Moments m = moments(v);
  // 5 standard errors for n = 1e5: sd(mean) = 1/sqrt(n) = 3.2e-3; sd(var) = sqrt(2/n) = 4.5e-3;
  // sd(skew) = sqrt(6/n) = 7.7e-3.
  CHECK(std::abs(m.mean) < 5 * 3.2e-3);
  CHECK(std::abs(m.var - 1.0) < 5 * 4.5e-3);
  CHECK(std::abs(m.skew) < 5 * 7.7e-3);
  // Box-Muller gives (2k, 2k+1) from one pair of words: they must still be uncorrelated.
  // Over n/2 pairs, sd(correlation) = 1/sqrt(n/2) = 4.5e-3.
  double c = 0;
  for (size_t k = 0; k + 1 < v.size(); k += 2) c += static_cast<double>(v[k]) * v[k + 1];
  CHECK(std::abs(c / (v.size() / 2)) < 5 * 4.5e-3);
  // Tails: P(|z| > 2) = 0.0455; binomial sd = sqrt(n * 0.0455 * 0.9545) = 66.
  int tail = 0;
  for (float x : v) tail += std::abs(x) > 2.f;
  CHECK(std::abs(tail - 4550) < 5 * 66);
  // randn with mean and std is the affine map of the same numbers.
  Generator again(8);
  std::vector<float> w = randn(Shape{100000}, again, Device::CPU, 3.f, 0.5f).to_vector();
  for (size_t i = 0; i < 1000; ++i) CHECK(w[i] == Approx(3.0 + 0.5 * v[i]).epsilon(1e-6));
}

TEST_CASE("rng: Box-Muller element i uses words 2k, 2k+1 of its block", "[rng]") {
  philox::U4 b = philox::block(99, 5);
  double u1 = philox::to_unit(b.z), u2 = philox::to_unit(b.w);
  double r = std::sqrt(-2 * std::log(u1));
  const double kTwoPi = 6.283185307179586;
  CHECK(philox::normal(99, 5, 2) == Approx(r * std::cos(kTwoPi * u2)).margin(1e-5));
  CHECK(philox::normal(99, 5, 3) == Approx(r * std::sin(kTwoPi * u2)).margin(1e-5));
}

TEST_CASE("rng: the same seed gives the same numbers, another seed others", "[rng]") {
  Generator a(2024), b(2024), c(2025);
  Tensor ta = randn(Shape{3, 5}, a), tb = randn(Shape{3, 5}, b), tc = randn(Shape{3, 5}, c);
  CHECK(ta.to_vector() == tb.to_vector());
  CHECK(ta.to_vector() != tc.to_vector());
  CHECK(a.next_u64() == b.next_u64());
  // Restoring a saved state replays the stream.
  uint64_t seed = a.seed(), offset = a.offset();
  Tensor next = rand_uniform(Shape{7}, a);
  a.set_state(seed, offset);
  CHECK(rand_uniform(Shape{7}, a).to_vector() == next.to_vector());
}

TEST_CASE("rng: successive draws from a Generator never overlap", "[rng]") {
  Generator gen(31);
  std::set<uint64_t> used;  // block counters handed out so far
  uint64_t expect = 0;
  for (int64_t n : {1, 2, 3, 4, 5, 7, 8, 13, 1, 97}) {
    CAPTURE(n);
    uint64_t first = gen.offset();
    Tensor t = rand_uniform(Shape{n}, gen);
    const uint64_t blocks = static_cast<uint64_t>((n + 3) / 4);
    CHECK(first == expect);  // contiguous: no gaps either
    CHECK(gen.offset() == first + blocks);
    for (uint64_t k = first; k < first + blocks; ++k) CHECK(used.insert(k).second);
    // The draw's values come from exactly those blocks.
    std::vector<float> v = t.to_vector();
    for (int64_t i = 0; i < n; ++i) CHECK(v[i] == philox::uniform(31, first, i));
    expect = first + blocks;
  }
  // next_u64 takes a block of its own.
  uint64_t before = gen.offset();
  uint64_t r1 = gen.next_u64(), r2 = gen.next_u64();
  CHECK(gen.offset() == before + 2);
  CHECK(r1 != r2);
}
