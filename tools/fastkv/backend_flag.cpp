#include "backend_flag.h"

#include "common/error.h"
#include "io/gguf.h"
#include "kernels/gemm_onednn.h"
#include "model/model.h"

namespace fastkv::cli {

void check_backend_text(const std::string& text) {
  if (text != "f32" && text != "bf16" && text != "quant" && text != "auto") {
    fail("--backend must be f32, bf16, quant or auto, got '", text, "'");
  }
}

kernels::Backend parse_backend(const std::string& text, const std::string& model_path) {
  check_backend_text(text);
  if (text == "f32") return kernels::Backend::kF32;
  if (text == "bf16") return kernels::Backend::kBf16;
  if (text == "quant") return kernels::Backend::kQuant;
  // auto: reads the file's tensor table (the header only) to see how its weights are stored.
  return auto_backend(gguf::File::open(model_path));
}

void add_backend_option(CLI::App* cmd, std::string& value) {
  cmd->add_option("--backend", value,
                  "f32 (OpenBLAS: the reference path), bf16 (oneDNN bf16 GEMMs and attention "
                  "tiles, AMX where present; bf16 KV cache), quant (quantised weights kept "
                  "quantised, read in place; other weights, attention and cache as bf16) or auto "
                  "(quant when most of the model's layer weights are in a type quant reads, "
                  "else bf16 where the CPU has native bf16, else f32)")
      ->capture_default_str();
}

}  // namespace fastkv::cli
