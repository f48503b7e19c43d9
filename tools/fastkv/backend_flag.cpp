#include "backend_flag.h"

#include "common/error.h"
#include "kernels/gemm_onednn.h"

namespace fastkv::cli {

kernels::Backend parse_backend(const std::string& text) {
  if (text == "f32") return kernels::Backend::kF32;
  if (text == "bf16") return kernels::Backend::kBf16;
  if (text == "quant") return kernels::Backend::kQuant;
  if (text == "auto") {
    return kernels::cpu_has_native_bf16() ? kernels::Backend::kBf16 : kernels::Backend::kF32;
  }
  fail("--backend must be f32, bf16, quant or auto, got '", text, "'");
}

void add_backend_option(CLI::App* cmd, std::string& value) {
  cmd->add_option("--backend", value,
                  "f32 (OpenBLAS: the reference path), bf16 (oneDNN bf16 GEMMs and attention "
                  "tiles, AMX where present; bf16 KV cache), quant (Q8_0/Q4_0/Q4_1 weights kept "
                  "quantised, read in place; other weights, attention and cache as bf16) or auto "
                  "(bf16 where the CPU has native bf16, else f32; never quant)")
      ->capture_default_str();
}

}  // namespace fastkv::cli
