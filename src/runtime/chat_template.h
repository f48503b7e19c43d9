// Chat templates for the model families people run: ChatML (Qwen, SmolLM), Llama-3, Mistral
// and Gemma. The format is chosen from `tokenizer.chat_template` (by its marker tokens) or, when
// the file has no template, from the vocabulary's special tokens. Rendered text excludes BOS:
// the tokenizer adds it when the vocabulary asks for it.
#pragma once

#include <string>
#include <vector>

namespace fastkv::gguf {
class File;
}

namespace fastkv {

class Tokenizer;

enum class ChatFormat { kChatML, kLlama3, kMistral, kGemma };

struct ChatMessage {
  std::string role;     // "system" | "user" | "assistant"
  std::string content;
};

struct ChatTemplate {
  ChatFormat format = ChatFormat::kChatML;
  // ChatML templates that insert a system message when the conversation has none (SmolLM2
  // does) carry its text here.
  std::string default_system;

  // Picks the format; throws fastkv::Error when neither the template nor the vocabulary
  // identifies a supported one.
  static ChatTemplate detect(const gguf::File& file, const Tokenizer& tok);
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  const char* name() const;
};

}  // namespace fastkv
