// Tensor basics: factories, copies versus shared views, item, device moves and the errors a
// user meets first (wrong sizes, non-scalar item, CUDA without a GPU, mixed devices).
#include <catch2/catch.hpp>
#include <sstream>

#include "core/context.h"
#include "tests/harness.h"

using namespace ember;

TEST_CASE("tensor: factories", "[tensor]") {
  Tensor e = Tensor::empty(Shape{2, 3});
  CHECK(e.defined());
  CHECK(e.shape() == Shape{2, 3});
  CHECK(e.numel() == 6);
  CHECK(e.dim() == 2);
  CHECK(e.device() == Device::CPU);
  CHECK_FALSE(Tensor().defined());

  for (float v : Tensor::zeros(Shape{3, 1, 5}).to_vector()) CHECK(v == 0.f);
  for (float v : Tensor::full(Shape{7}, -2.5f).to_vector()) CHECK(v == -2.5f);

  Tensor s = Tensor::scalar(4.f);
  CHECK(s.dim() == 0);
  CHECK(s.numel() == 1);
  CHECK(s.item() == 4.f);

  std::vector<float> vals{1, 2, 3, 4, 5, 6};
  Tensor f = Tensor::from_vector(vals, Shape{3, 2});
  CHECK(f.to_vector() == vals);
  CHECK(f.size(0) == 3);
  CHECK(f.size(-1) == 2);

  Tensor z = Tensor::zeros(Shape{0, 4});  // empty tensors are allowed and hold nothing
  CHECK(z.numel() == 0);
  CHECK(z.to_vector().empty());
}

TEST_CASE("tensor: from_vector with the wrong number of values is an error", "[tensor][errors]") {
  REQUIRE_THROWS_WITH(Tensor::from_vector({1, 2, 3}, Shape{2, 2}),
                      Catch::Contains("from_vector") && Catch::Contains("3 values") && Catch::Contains("[2, 2]"));
  REQUIRE_THROWS_WITH(Tensor::from_vector({}, Shape{1}), Catch::Contains("0 values"));
}

TEST_CASE("tensor: clone copies, handle copies and detach share", "[tensor]") {
  Tensor x = test::random_tensor(Shape{3, 4}, 1);
  std::vector<float> orig = x.to_vector();

  Tensor c = x.clone();
  CHECK(c.to_vector() == orig);
  CHECK(c.data() != x.data());
  c.fill_(7.f);
  CHECK(x.to_vector() == orig);  // clone is independent

  Tensor h = x;  // a handle copy is the same tensor
  CHECK(h.same(x));

  Tensor d = x.detach();
  CHECK_FALSE(d.same(x));
  CHECK(d.data() == x.data());
  d.data()[5] = 99.f;
  CHECK(x.to_vector()[5] == 99.f);  // detach shares the data
}

TEST_CASE("tensor: detach and clone carry no autograd history", "[tensor]") {
  Tensor x = test::random_param(Shape{4}, 2);
  Tensor y = ops::tanh(x);
  REQUIRE(y.grad_fn() != nullptr);
  Tensor d = y.detach(), c = y.clone();
  CHECK(d.grad_fn() == nullptr);
  CHECK_FALSE(d.requires_grad());
  CHECK(c.grad_fn() == nullptr);
  CHECK_FALSE(c.requires_grad());
  CHECK(d.is_leaf());
}

TEST_CASE("tensor: item on a non-scalar is an error", "[tensor][errors]") {
  CHECK(Tensor::full(Shape{1, 1, 1}, 3.f).item() == 3.f);
  REQUIRE_THROWS_WITH(Tensor::zeros(Shape{2, 3}).item(), Catch::Contains("6 elements") && Catch::Contains("[2, 3]"));
  REQUIRE_THROWS_WITH(Tensor::zeros(Shape{0}).item(), Catch::Contains("0 elements"));
}

TEST_CASE("tensor: to(CPU) on a CPU tensor is the same tensor", "[tensor]") {
  Tensor x = test::random_tensor(Shape{5}, 3);
  Tensor y = x.to(Device::CPU);
  CHECK(y.same(x));
}

TEST_CASE("tensor: copy_ and fill_", "[tensor]") {
  Tensor x = Tensor::zeros(Shape{2, 3});
  Tensor src = test::random_tensor(Shape{6}, 4);
  x.copy_(src);  // same element count, any shape
  CHECK(x.to_vector() == src.to_vector());
  REQUIRE_THROWS_WITH(x.copy_(Tensor::zeros(Shape{5})), Catch::Contains("copy_") && Catch::Contains("[5]"));
  x.fill_(1.5f);
  for (float v : x.to_vector()) CHECK(v == 1.5f);
}

TEST_CASE("tensor: autograd fields of a leaf", "[tensor]") {
  Tensor x = Tensor::zeros(Shape{3});
  CHECK_FALSE(x.requires_grad());
  CHECK(x.is_leaf());
  x.requires_grad_();
  CHECK(x.requires_grad());
  CHECK_FALSE(x.grad().defined());
  x.set_grad(Tensor::full(Shape{3}, 1.f));
  CHECK(x.grad().defined());
  REQUIRE_THROWS_WITH(x.set_grad(Tensor::zeros(Shape{4})), Catch::Contains("set_grad") && Catch::Contains("[4]"));
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("tensor: printing shows shape, device and values", "[tensor]") {
  std::ostringstream os;
  os << Tensor::from_vector({1.f, 2.5f}, Shape{2}) << " " << Tensor();
  CHECK(os.str() == "Tensor([2], cpu, [1, 2.5]) Tensor(undefined)");
}

TEST_CASE("tensor: asking for CUDA without a usable GPU is a clear error", "[tensor][errors][device]") {
  CHECK(parse_device("cpu") == Device::CPU);
  REQUIRE_THROWS_WITH(parse_device("tpu"), Catch::Contains("unknown device 'tpu'"));
#ifdef EMBER_WITH_CUDA
  if (cuda_available()) {
    CHECK(parse_device("cuda") == Device::CUDA);
  } else {
    REQUIRE_THROWS_WITH(parse_device("cuda"), Catch::Contains("cuda was requested but cannot be used"));
    CHECK(parse_device("auto") == Device::CPU);
  }
#else
  // Built without the CUDA backend: every way of reaching CUDA says so.
  REQUIRE_THROWS_WITH(parse_device("cuda"), Catch::Contains("built without the CUDA backend"));
  REQUIRE_THROWS_WITH(Tensor::zeros(Shape{2}, Device::CUDA), Catch::Contains("built without the CUDA backend"));
  REQUIRE_THROWS_WITH(Tensor::zeros(Shape{2}).to(Device::CUDA), Catch::Contains("built without the CUDA backend"));
#endif
}

// Mixing devices in one op is tested where a cuda tensor can exist: tests/cuda/test_runtime.cpp.
TEST_CASE("tensor: a move to cuda works or fails naming why, and the source is untouched", "[tensor][errors][device]") {
  Tensor a = test::random_tensor(Shape{3}, 5);
  const std::vector<float> before = a.to_vector();
  if (cuda_available()) {
    Tensor b = a.to(Device::CUDA);
    CHECK(b.device() == Device::CUDA);
    CHECK(b.to_vector() == before);
  } else {
    REQUIRE_FALSE(cuda_unavailable_reason().empty());
    REQUIRE_THROWS_WITH(a.to(Device::CUDA), Catch::Contains(cuda_unavailable_reason()));
    REQUIRE_THROWS_WITH(Tensor::full(Shape{3}, 1.f, Device::CUDA), Catch::Contains(cuda_unavailable_reason()));
  }
  CHECK(a.device() == Device::CPU);
  CHECK(a.to_vector() == before);
}

TEST_CASE("tensor: using an undefined tensor is an error, not a crash", "[tensor][errors]") {
  Tensor u;
  REQUIRE_THROWS_WITH(u.shape(), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(u.detach(), Catch::Contains("detach: tensor is undefined"));
  REQUIRE_THROWS_WITH(u.zero_grad(), Catch::Contains("zero_grad: tensor is undefined"));
  REQUIRE_THROWS_WITH(u.set_grad(Tensor()), Catch::Contains("set_grad: tensor is undefined"));
  REQUIRE_THROWS_WITH(u.reshape({1}), Catch::Contains("undefined"));
  REQUIRE_THROWS_WITH(u.backward(), Catch::Contains("undefined"));
}
