#include "check.h"

namespace eo::bind {

void register_conv(py::module_& m) {}

}  // namespace eo::bind
