#include "kernels/linear.h"

#include "common/error.h"
#include "kernels/ops.h"

namespace fastkv::kernels {

Linear::Linear(std::vector<float> w, int in, int out, std::vector<float> bias, Backend backend)
    : in_(in), out_(out) {
  if (backend == Backend::kQuant) {
    fail("Linear: a quant layer is built from its quantised blocks, not from f32 weights");
  }
  if (backend == Backend::kBf16) {
    fast_ = std::make_unique<OneDnnLinear>(w.data(), in, out, bias.empty() ? nullptr : bias.data());
  } else {
    w_ = std::move(w);
    bias_ = std::move(bias);
  }
}

Linear::Linear(const uint8_t* blocks, QuantFormat format, int in, int out,
               std::vector<float> bias)
    : in_(in),
      out_(out),
      quant_(std::make_unique<QuantLinear>(blocks, format, in, out, std::move(bias))) {}

void Linear::forward(const float* x, int n, float* y) const {
  if (quant_) {
    quant_->forward(x, n, y);
  } else if (fast_) {
    fast_->forward(x, n, y);
  } else {
    linear(x, n, w_.data(), in_, out_, bias_.empty() ? nullptr : bias_.data(), y);
  }
}

void Linear::forward_native(const void* x, int n, float* y) const {
  if (fast_) {
    fast_->forward_bf16(static_cast<const uint16_t*>(x), n, y);
  } else {
    forward(static_cast<const float*>(x), n, y);
  }
}

int64_t Linear::weight_bytes() const {
  if (quant_) return quant_->weight_bytes();
  return fast_ ? fast_->weight_bytes() : static_cast<int64_t>(w_.size() * sizeof(float));
}

void forward_shared_input(std::initializer_list<LinearOut> outs, const float* x, int n) {
  // Fixed arrays, not vectors: this runs twice per layer for every decoded token.
  constexpr int kMax = QuantLinear::kMaxSharedInput;
  if (static_cast<int>(outs.size()) > kMax) {
    fail("QuantLinear: at most ", kMax, " layers share an input");
  }
  const QuantLinear* quant[kMax];
  float* ys[kMax];
  int count = 0, bf16 = 0;
  const int in = outs.size() > 0 ? outs.begin()->layer->in_ : 0;
  for (const LinearOut& o : outs) {
    if (o.layer->in_ != in) {
      fail("Linear: layers sharing an input need the same width, got ", in, " and ", o.layer->in_);
    }
    if (o.layer->fast_) ++bf16;
    if (!o.layer->quant_) continue;
    quant[count] = o.layer->quant_.get();
    ys[count++] = o.y;
  }
  if (n > 0 && bf16 == static_cast<int>(outs.size())) {
    // every layer on oneDNN's bf16 matmul: x rounded once for all of them
    const uint16_t* xb = matmul_input_bf16(x, static_cast<int64_t>(n) * in);
    for (const LinearOut& o : outs) o.layer->fast_->forward_bf16(xb, n, o.y);
    return;
  }
  if (count == static_cast<int>(outs.size())) {
    if (n <= kQuantDotMaxRows) {
      QuantLinear::forward_dot_group(quant, ys, count, x, n);
    } else {
      QuantLinear::forward_gemm_group(quant, ys, count, x, n);
    }
    return;
  }
  for (const LinearOut& o : outs) o.layer->forward(x, n, o.y);
}

}  // namespace fastkv::kernels
