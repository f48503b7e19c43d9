// The context rules of src/runtime/context.h on stories260K (trained with 2048 positions): the
// effective context, the fits check's boundary (ctx - 1 prompt tokens fit, ctx do not), its
// message naming the front end's flag, and the warning past the training context.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "common/error.h"
#include "model/model.h"
#include "runtime/context.h"
#include "test_util.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

class ContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = test::shared_path("models/stories260K.gguf");
    ASSERT_TRUE(fs::exists(path)) << path << " is missing (../shared)";
    model_ = Model::load(path).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override { ASSERT_NE(model_, nullptr); }

  // The message of the fastkv::Error `f` throws, "" when it throws none.
  template <typename F>
  static std::string error_of(F f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  }

  static Model* model_;
};
Model* ContextTest::model_ = nullptr;

TEST_F(ContextTest, EffectiveContextIsCtxSizeOrTheTrainingContext) {
  const int train = model_->config().n_ctx_train;
  EXPECT_EQ(train, 2048);
  EXPECT_EQ(effective_context(*model_, 0), train);
  EXPECT_EQ(effective_context(*model_, 512), 512);
  EXPECT_EQ(effective_context(*model_, 1), 1);
  EXPECT_EQ(effective_context(*model_, 4096), 4096);  // above the training context: as asked
}

TEST_F(ContextTest, PromptFitsLeavesRoomForOneGeneratedToken) {
  EXPECT_TRUE(prompt_fits(15, 16));
  EXPECT_FALSE(prompt_fits(16, 16));
  EXPECT_FALSE(prompt_fits(17, 16));
  EXPECT_TRUE(prompt_fits(1, 2));
  EXPECT_FALSE(prompt_fits(1, 1));
  EXPECT_FALSE(prompt_fits(0, 0));
  EXPECT_EQ(prompt_too_long(16, 16),
            "the prompt has 16 tokens but the context holds 16 (prompt + at least one generated "
            "token)");
}

TEST_F(ContextTest, CheckPromptFitsBoundary) {
  // The prompt needs room for one generated token: ctx - 1 tokens fit, ctx do not.
  EXPECT_NO_THROW(check_prompt_fits(*model_, 15, 16));
  EXPECT_THROW(check_prompt_fits(*model_, 16, 16), Error);
  // 0 = the training context.
  const int train = model_->config().n_ctx_train;
  EXPECT_NO_THROW(check_prompt_fits(*model_, train - 1, 0));
  EXPECT_THROW(check_prompt_fits(*model_, train, 0), Error);
  // An empty prompt never fits.
  EXPECT_EQ(error_of([] { check_prompt_fits(*model_, 0, 0); }), "the prompt is empty");
}

TEST_F(ContextTest, CheckPromptFitsSuggestsTheFlag) {
  const std::string msg = error_of([] { check_prompt_fits(*model_, 600, 512); });
  EXPECT_EQ(msg,
            "the prompt has 600 tokens but the context holds 512 (prompt + at least one generated "
            "token); raise it with -c/--ctx-size");
  // With ctx_size 0 the message names the training context.
  const int train = model_->config().n_ctx_train;
  const std::string trained = error_of([&] { check_prompt_fits(*model_, train, 0); });
  EXPECT_NE(trained.find("-c/--ctx-size"), std::string::npos) << trained;
  EXPECT_NE(trained.find("(the model was trained with 2048)"), std::string::npos) << trained;
  // A front end names its own flag.
  const std::string other = error_of([] { check_prompt_fits(*model_, 9, 8, "--ctx"); });
  EXPECT_NE(other.find("raise it with --ctx"), std::string::npos) << other;
  EXPECT_EQ(other.find("-c/--ctx-size"), std::string::npos) << other;
}

TEST_F(ContextTest, WarningOnlyPastTheTrainingContext) {
  const int train = model_->config().n_ctx_train;
  EXPECT_EQ(context_warning(*model_, 0), "");
  EXPECT_EQ(context_warning(*model_, train), "");
  EXPECT_EQ(context_warning(*model_, train + 1),
            "the context size 2049 is larger than the 2048 tokens the model was trained with; "
            "output past 2048 tokens is likely to be gibberish");
}

}  // namespace
}  // namespace fastkv
