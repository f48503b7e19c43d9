// The API key check: with --api-key set, every route but /health needs the header
// "Authorization: Bearer <key>".
#pragma once

#include <string>

#include "server/openai.h"

namespace fastkv::server {

// Whether an Authorization header value (`authorization`, "" when absent) grants access under
// `api_key` ("" = no key needed). Compares every byte whatever the first mismatch, so timing
// does not reveal the key.
bool api_key_accepted(const std::string& api_key, const std::string& authorization);

// The 401 for a refused request: a missing key (no Authorization header) or a wrong one.
ApiError api_key_error(bool has_authorization);

}  // namespace fastkv::server
