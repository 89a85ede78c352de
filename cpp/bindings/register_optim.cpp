#include "check.h"

namespace eo::bind {

void register_optim(py::module_& m) {}

}  // namespace eo::bind
