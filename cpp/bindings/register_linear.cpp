#include "check.h"

namespace eo::bind {

void register_linear(py::module_& m) {}

}  // namespace eo::bind
