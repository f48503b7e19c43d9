#include "kernels/linear.h"

#include "kernels/ops.h"

namespace fastkv::kernels {

Linear::Linear(std::vector<float> w, int in, int out, std::vector<float> bias, Backend backend)
    : in_(in), out_(out) {
  if (backend == Backend::kBf16) {
    fast_ = std::make_unique<OneDnnLinear>(w.data(), in, out, bias.empty() ? nullptr : bias.data());
  } else {
    w_ = std::move(w);
    bias_ = std::move(bias);
  }
}

void Linear::forward(const float* x, int n, float* y) const {
  if (fast_) {
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
  return fast_ ? fast_->weight_bytes() : static_cast<int64_t>(w_.size() * sizeof(float));
}

}  // namespace fastkv::kernels
