#include "kernels/cancel.h"

namespace fastkv::kernels {

namespace {
thread_local const CancelCheck* installed = nullptr;
}  // namespace

const CancelCheck* cancel_check() { return installed; }

ScopedCancelCheck::ScopedCancelCheck(const CancelCheck* check) : previous_(installed) {
  installed = check;
}

ScopedCancelCheck::~ScopedCancelCheck() { installed = previous_; }

}  // namespace fastkv::kernels
