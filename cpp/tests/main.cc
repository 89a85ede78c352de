#include <cstdio>
#include <cstring>

#include "harness.h"

// kernel_tests [filter]: runs every registered test whose name contains `filter`.
int main(int argc, char** argv) {
  int failed = 0, ran = 0;
  for (auto& [name, fn] : eo::test::Registry::tests()) {
    if (argc > 1 && !std::strstr(name.c_str(), argv[1])) continue;
    ++ran;
    try {
      fn();
      std::printf("ok   %s\n", name.c_str());
    } catch (const eo::test::Failure& f) {
      ++failed;
      std::printf("FAIL %s: %s\n", name.c_str(), f.what.c_str());
    }
  }
  std::printf("%d tests, %d failed\n", ran, failed);
  return failed ? 1 : 0;
}
