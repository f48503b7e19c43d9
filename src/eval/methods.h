// Method lists of evaluations: parsed and resolved in the policy layer (policy/method_list.h);
// the eval code uses them under its own namespace.
#pragma once

#include "method/method_list.h"

namespace fastkv::eval {

using fastkv::create_policy;
using fastkv::MethodSpec;
using fastkv::parse_method_list;
using fastkv::resolve_methods;

}  // namespace fastkv::eval
