#include "check.h"

namespace eo::bind {

void register_data(py::module_& m) {}

}  // namespace eo::bind
