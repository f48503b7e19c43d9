#include "flag_lists.h"

#include <cstdlib>

#include "common/error.h"
#include "common/strings.h"
#include "kernels/gemm_onednn.h"

namespace fastkv::cli {

std::vector<int> parse_int_list(const std::string& flag, const std::string& text) {
  std::vector<int> out;
  if (text.empty()) return out;
  for (const std::string& raw : split(text, ",")) {
    std::string s = strip(raw);
    // "4K" / "4k" = 4096
    int mult = 1;
    if (!s.empty() && (s.back() == 'K' || s.back() == 'k')) {
      mult = 1024;
      s.pop_back();
    }
    char* end = nullptr;
    long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != '\0' || v < 0 || v > (1L << 30) / mult) {
      fail(flag, ": '", raw, "' is not a non-negative integer");
    }
    out.push_back(static_cast<int>(v * mult));
  }
  return out;
}

kernels::Backend parse_backend(const std::string& text) {
  if (text == "f32") return kernels::Backend::kF32;
  if (text == "bf16") return kernels::Backend::kBf16;
  if (text == "auto") {
    return kernels::cpu_has_native_bf16() ? kernels::Backend::kBf16 : kernels::Backend::kF32;
  }
  fail("--backend must be f32, bf16 or auto, got '", text, "'");
}

void add_backend_option(CLI::App* cmd, std::string& value) {
  cmd->add_option("--backend", value,
                  "f32 (OpenBLAS: the reference path), bf16 (oneDNN bf16 GEMMs and attention "
                  "tiles, AMX where present; bf16 KV cache) or auto (bf16 where the CPU has "
                  "native bf16, else f32)")
      ->capture_default_str();
}

}  // namespace fastkv::cli
