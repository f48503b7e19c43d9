// The oneDNN CPU engine shared by the bf16 kernels (one per process).
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

namespace fastkv::kernels {

dnnl::engine& onednn_engine();

}  // namespace fastkv::kernels
