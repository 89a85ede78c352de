// A minimal test harness for the C++ kernel tests (run by ctest, and under the sanitizers by
// tools/sanitize.sh). TEST(name) registers a function; CHECK fails the test with a message.
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace eo::test {

struct Registry {
  static std::vector<std::pair<std::string, std::function<void()>>>& tests() {
    static std::vector<std::pair<std::string, std::function<void()>>> t;
    return t;
  }
};
struct Register {
  Register(const char* name, std::function<void()> f) { Registry::tests().emplace_back(name, f); }
};
struct Failure {
  std::string what;
};

inline std::vector<float> random_vec(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// max |a-b| / (atol + rtol*|b|) must be <= 1
inline void expect_close(const float* a, const float* b, size_t n, float rtol, float atol,
                         const std::string& what) {
  for (size_t i = 0; i < n; ++i) {
    if (!(std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(b[i]))) {
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s: element %zu differs: %.8g vs reference %.8g", what.c_str(),
                    i, a[i], b[i]);
      throw Failure{buf};
    }
  }
}

}  // namespace eo::test

#define EO_CAT2(a, b) a##b
#define EO_CAT(a, b) EO_CAT2(a, b)
#define TEST(name)                                                              \
  static void name();                                                           \
  static eo::test::Register EO_CAT(reg_, name)(#name, name);                    \
  static void name()
#define CHECK(cond, msg)                                                        \
  do {                                                                          \
    if (!(cond)) throw eo::test::Failure{std::string(msg) + " [" #cond "]"};    \
  } while (0)
