// server/auth.h: which Authorization header values the API key accepts, and the 401 it answers
// otherwise (the routes that use it are tested end to end in test_server.cpp).
#include <gtest/gtest.h>

#include <string>

#include "server/auth.h"

namespace fastkv::server {
namespace {

TEST(ApiKey, NoKeyAcceptsEveryRequest) {
  EXPECT_TRUE(api_key_accepted("", ""));
  EXPECT_TRUE(api_key_accepted("", "Bearer anything"));
}

TEST(ApiKey, OnlyTheExactBearerHeaderIsAccepted) {
  EXPECT_TRUE(api_key_accepted("s3cret", "Bearer s3cret"));
  EXPECT_FALSE(api_key_accepted("s3cret", ""));
  EXPECT_FALSE(api_key_accepted("s3cret", "s3cret"));          // no scheme
  EXPECT_FALSE(api_key_accepted("s3cret", "bearer s3cret"));   // the scheme's case counts
  EXPECT_FALSE(api_key_accepted("s3cret", "Bearer s3cre"));    // a prefix of the key
  EXPECT_FALSE(api_key_accepted("s3cret", "Bearer s3crets"));  // the key and more
  EXPECT_FALSE(api_key_accepted("s3cret", "Bearer s3creT"));   // the last byte differs
  EXPECT_FALSE(api_key_accepted("s3cret", "Bearer  s3cret"));  // an extra space
}

TEST(ApiKey, ErrorSaysWhetherTheKeyWasMissingOrWrong) {
  const ApiError missing = api_key_error(false);
  EXPECT_EQ(missing.status(), 401);
  EXPECT_EQ(missing.code(), "invalid_api_key");
  EXPECT_EQ(std::string(missing.what()), "missing API key: send 'Authorization: Bearer <key>'");
  const ApiError wrong = api_key_error(true);
  EXPECT_EQ(wrong.status(), 401);
  EXPECT_EQ(wrong.code(), "invalid_api_key");
  EXPECT_EQ(std::string(wrong.what()), "invalid API key (expected 'Authorization: Bearer <key>')");
}

}  // namespace
}  // namespace fastkv::server
