// Chat templates (src/runtime/chat_template.h): exact renderings of ChatML, Llama-3 and
// Mistral, detection from `tokenizer.chat_template` or from the vocabulary, SmolLM2's real
// template, and errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/gguf.h"
#include "runtime/chat_template.h"
#include "test_util.h"
#include "tokenizer/tokenizer.h"

namespace fastkv {
namespace {
namespace fs = std::filesystem;

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."},
    {"user", "Hi!"},
    {"assistant", "Hello."},
    {"user", "What is 2+2?"},
};

ChatTemplate chatml(std::string default_system = "") {
  ChatTemplate t;
  t.format = ChatFormat::kChatML;
  t.default_system = std::move(default_system);
  return t;
}

ChatTemplate of_format(ChatFormat f) {
  ChatTemplate t;
  t.format = f;
  return t;
}

// ---- Rendering ------------------------------------------------------------------------------

TEST(ChatTemplateRender, ChatML) {
  EXPECT_EQ(chatml().render(kConversation, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\nHello.<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(chatml().render({{"user", "Hi!"}}, false), "<|im_start|>user\nHi!<|im_end|>\n");
  EXPECT_EQ(chatml().render({{"user", "Hi!"}}, true),
            "<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_STREQ(chatml().name(), "chatml");
}

TEST(ChatTemplateRender, ChatMLWithDefaultSystem) {
  const ChatTemplate t = chatml("You are a test.");
  // No system message: the default one is inserted first.
  EXPECT_EQ(t.render({{"user", "Hi!"}}, true),
            "<|im_start|>system\nYou are a test.<|im_end|>\n"
            "<|im_start|>user\nHi!<|im_end|>\n"
            "<|im_start|>assistant\n");
  // A system message of the conversation replaces the default.
  EXPECT_EQ(t.render(kConversation, true), chatml().render(kConversation, true));
}

TEST(ChatTemplateRender, Llama3) {
  const ChatTemplate t = of_format(ChatFormat::kLlama3);
  EXPECT_EQ(t.render(kConversation, true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
  EXPECT_EQ(t.render({{"user", "Hi!"}}, false),
            "<|start_header_id|>user<|end_header_id|>\n\nHi!<|eot_id|>");
  EXPECT_STREQ(t.name(), "llama3");
}

TEST(ChatTemplateRender, Mistral) {
  const ChatTemplate t = of_format(ChatFormat::kMistral);
  // The system message prefixes the next user turn; BOS is left to the tokenizer.
  EXPECT_EQ(t.render(kConversation, true),
            "[INST] Be brief.\n\nHi! [/INST]Hello.</s>[INST] What is 2+2? [/INST]");
  EXPECT_EQ(t.render({{"user", "Hi!"}}, true), "[INST] Hi! [/INST]");
  // The generation prompt adds nothing: the model answers right after [/INST].
  EXPECT_EQ(t.render({{"user", "Hi!"}}, false), "[INST] Hi! [/INST]");
  EXPECT_STREQ(t.name(), "mistral");
}

// Gemma 2 / 3: user and model turns; the system message goes before the first user text.
TEST(ChatTemplateRender, Gemma) {
  const ChatTemplate t = of_format(ChatFormat::kGemma);
  EXPECT_EQ(t.render(kConversation, true),
            "<start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n"
            "<start_of_turn>model\nHello.<end_of_turn>\n"
            "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n");
  EXPECT_EQ(t.render({{"user", "Hi!"}}, false), "<start_of_turn>user\nHi!<end_of_turn>\n");
  EXPECT_STREQ(t.name(), "gemma");
}

TEST(ChatTemplateRender, UnknownRoleIsAnError) {
  for (ChatFormat f : {ChatFormat::kChatML, ChatFormat::kLlama3, ChatFormat::kMistral,
                       ChatFormat::kGemma}) {
    try {
      of_format(f).render({{"user", "Hi"}, {"tool", "42"}}, true);
      ADD_FAILURE() << "no error for role 'tool' in " << of_format(f).name();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("'tool'"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("role"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(chatml().render({{"", "x"}}, true), Error);
  EXPECT_THROW(chatml().render({{"User", "x"}}, true), Error);  // roles are case-sensitive
}

// ---- Detection ------------------------------------------------------------------------------

// A GGUF image holding only tokenizer metadata (plus the optional template), parsed back.
struct VocabImage {
  gguf::File file;
  std::unique_ptr<Tokenizer> tok;
};

VocabImage parse(const gguf::Writer& w, const std::string& name) {
  VocabImage img{gguf::File::from_bytes(name, w.to_bytes()), nullptr};
  img.tok = Tokenizer::from_gguf(img.file);
  return img;
}

// A minimal byte-level BPE vocabulary: a few normal tokens plus `specials` (control tokens).
VocabImage bpe_image(const std::vector<std::string>& specials, const std::string& tmpl) {
  gguf::Writer w;
  std::vector<std::string> tokens = {"a", "b", "ab", "<|endoftext|>"};
  std::vector<int32_t> types = {1, 1, 1, 3};
  for (const std::string& s : specials) {
    tokens.push_back(s);
    types.push_back(3);
  }
  w.set_string("general.architecture", "llama");
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "gpt2");
  w.set_string_array("tokenizer.ggml.tokens", tokens);
  w.set_i32_array("tokenizer.ggml.token_type", types);
  w.set_string_array("tokenizer.ggml.merges", {"a b"});
  w.set_u32("tokenizer.ggml.eos_token_id", 3);
  if (!tmpl.empty()) w.set_string("tokenizer.chat_template", tmpl);
  return parse(w, "mini-bpe.gguf");
}

// stories260K's SentencePiece vocabulary ("llama" tokenizer) with an optional template.
VocabImage spm_image(const std::string& tmpl) {
  const std::string path = test::shared_path("models/stories260K.gguf");
  if (!fs::exists(path)) throw Error(path + " not found (../shared is required)");
  const gguf::File src = gguf::File::open(path);
  gguf::Writer w;
  w.set_string("general.architecture", "llama");
  for (const auto& [k, v] : src.metadata()) {
    if (k.rfind("tokenizer.", 0) == 0) w.set(k, v);
  }
  if (!tmpl.empty()) w.set_string("tokenizer.chat_template", tmpl);
  return parse(w, "spm-vocab.gguf");
}

ChatTemplate detect(const VocabImage& img) { return ChatTemplate::detect(img.file, *img.tok); }

// Templates written in the style of each family's (abridged to what detection looks at).
const char* kQwenStyle =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";
const char* kLlama3Style =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
const char* kMistralStyle =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ message['content'] + eos_token}}{% endif %}{% endfor %}";

TEST(ChatTemplateDetect, FromTemplateStringWithSentencePieceVocab) {
  {
    ChatTemplate t = detect(spm_image(kQwenStyle));
    EXPECT_EQ(t.format, ChatFormat::kChatML);
    EXPECT_EQ(t.default_system, "");
  }
  EXPECT_EQ(detect(spm_image(kLlama3Style)).format, ChatFormat::kLlama3);
  EXPECT_EQ(detect(spm_image(kMistralStyle)).format, ChatFormat::kMistral);
}

TEST(ChatTemplateDetect, FromTemplateStringWithBpeVocab) {
  // The template wins over the vocabulary's tokens.
  EXPECT_EQ(detect(bpe_image({"<|start_header_id|>"}, kQwenStyle)).format, ChatFormat::kChatML);
  EXPECT_EQ(detect(bpe_image({"<|im_start|>"}, kLlama3Style)).format, ChatFormat::kLlama3);
  EXPECT_EQ(detect(bpe_image({}, kMistralStyle)).format, ChatFormat::kMistral);
}

TEST(ChatTemplateDetect, ChatMLDefaultSystemFromTheTemplate) {
  // SmolLM2 / Qwen2 style: inserted when the first message is not a system one.
  const std::string smol_style =
      "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
      "{{ '<|im_start|>system\nYou are a unit test.<|im_end|>\n' }}{% endif %}"
      "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
      "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
  ChatTemplate t = detect(bpe_image({"<|im_start|>", "<|im_end|>"}, smol_style));
  EXPECT_EQ(t.format, ChatFormat::kChatML);
  EXPECT_EQ(t.default_system, "You are a unit test.");

  // Qwen2.5 style: the system text is built from the first message when there is one, else a
  // literal default in the else-branch; the newline is a Jinja escape ("\n" as two characters).
  const std::string qwen25_style =
      "{%- if messages[0]['role'] == 'system' %}"
      "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
      "{%- else %}{{- '<|im_start|>system\\nYou are a helpful unit test.<|im_end|>\\n' }}"
      "{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + "
      "message.content + '<|im_end|>' + '\\n' }}{%- endfor %}";
  ChatTemplate q = detect(bpe_image({"<|im_start|>", "<|im_end|>"}, qwen25_style));
  EXPECT_EQ(q.format, ChatFormat::kChatML);
  EXPECT_EQ(q.default_system, "You are a helpful unit test.");

  // A system text built from variables is not a literal default.
  const std::string from_vars =
      "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n' + default_system + "
      "'<|im_end|>\n' }}{% endif %}";
  EXPECT_EQ(detect(bpe_image({}, from_vars)).default_system, "");
}

TEST(ChatTemplateDetect, FromVocabularyWhenThereIsNoTemplate) {
  EXPECT_EQ(detect(bpe_image({"<|im_start|>", "<|im_end|>"}, "")).format, ChatFormat::kChatML);
  EXPECT_EQ(detect(bpe_image({"<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}, ""))
                .format,
            ChatFormat::kLlama3);
  EXPECT_EQ(detect(bpe_image({"[INST]", "[/INST]"}, "")).format, ChatFormat::kMistral);
  EXPECT_EQ(detect(bpe_image({"<start_of_turn>", "<end_of_turn>"}, "")).format,
            ChatFormat::kGemma);
  const std::string gemma_style =
      "{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\n' + "
      "message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}";
  EXPECT_EQ(detect(bpe_image({}, gemma_style)).format, ChatFormat::kGemma);
  // A SentencePiece vocabulary without any marker: Llama-2 / Mistral [INST] blocks.
  EXPECT_EQ(detect(spm_image("")).format, ChatFormat::kMistral);
}

TEST(ChatTemplateDetect, UnknownFormatIsAnError) {
  // A Phi-3-style template and a BPE vocabulary without ChatML, Llama-3, [INST] or Gemma tokens.
  const std::string phi_style =
      "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + "
      "message['content'] + '<|end|>\n' }}{% endfor %}";
  for (const std::string& tmpl : {phi_style, std::string()}) {
    try {
      detect(bpe_image({"<|user|>", "<|end|>"}, tmpl));
      ADD_FAILURE() << "no error for template '" << tmpl << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("mini-bpe.gguf"), std::string::npos) << msg;  // names the file
      EXPECT_NE(msg.find("chat format"), std::string::npos) << msg;
      EXPECT_NE(msg.find("chatml"), std::string::npos) << msg;  // lists what is supported
    }
  }
}

// ---- SmolLM2's own file ---------------------------------------------------------------------

TEST(ChatTemplateDetect, SmolLM2RealTemplate) {
  const std::string path = test::find_model("SmolLM2-135M-Instruct.Q4_1.gguf");
  if (path.empty()) {
    GTEST_SKIP() << "SmolLM2-135M-Instruct.Q4_1.gguf not found in ../shared/models, "
                    "$FASTKV_MODEL_PATH or models/ "
                    "(scripts/fetch-models.sh downloads it)";
  }
  const gguf::File f = gguf::File::open(path);
  auto tok = Tokenizer::from_gguf(f);
  ChatTemplate t = ChatTemplate::detect(f, *tok);
  EXPECT_EQ(t.format, ChatFormat::kChatML);
  EXPECT_EQ(t.default_system, "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  const std::string text = t.render({{"user", "Hi!"}}, true);
  EXPECT_EQ(text,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
  // The markers are single special tokens of the vocabulary, and SmolLM2 adds no BOS.
  const int32_t im_start = tok->find_token("<|im_start|>");
  const int32_t im_end = tok->find_token("<|im_end|>");
  ASSERT_GE(im_start, 0);
  ASSERT_GE(im_end, 0);
  std::vector<int32_t> ids = tok->encode(text, /*add_special=*/true, /*parse_special=*/true);
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), im_start);
  int starts = 0, ends = 0;
  for (int32_t id : ids) {
    starts += id == im_start;
    ends += id == im_end;
  }
  EXPECT_EQ(starts, 3);
  EXPECT_EQ(ends, 2);
  EXPECT_TRUE(tok->is_end_of_generation(im_end));
}

}  // namespace
}  // namespace fastkv
