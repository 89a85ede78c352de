#include "check.h"

namespace eo::bind {

void register_layers(py::module_& m) {}

}  // namespace eo::bind
