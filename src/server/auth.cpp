#include "server/auth.h"

namespace fastkv::server {

bool api_key_accepted(const std::string& api_key, const std::string& authorization) {
  if (api_key.empty()) return true;
  const std::string want = "Bearer " + api_key;
  const std::string& got = authorization;
  unsigned diff = got.size() != want.size();
  for (size_t i = 0; i < want.size(); ++i) {
    diff |= static_cast<unsigned char>(want[i]) ^
            static_cast<unsigned char>(i < got.size() ? got[i] : 0);
  }
  return diff == 0;
}

ApiError api_key_error(bool has_authorization) {
  return ApiError(401,
                  has_authorization ? "invalid API key (expected 'Authorization: Bearer <key>')"
                                    : "missing API key: send 'Authorization: Bearer <key>'",
                  "", "invalid_api_key");
}

}  // namespace fastkv::server
