#include "runtime/chat_template.h"

#include "common/error.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"

namespace fastkv {
namespace {

bool contains(const std::string& s, const char* needle) { return s.find(needle) != std::string::npos; }

// The literal default system message of a ChatML template that inserts one when the
// conversation has none, e.g. SmolLM2's
//   {% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n...<|im_end|>\n' }}
// or Qwen2.5's `{% if messages[0]['role'] == 'system' %}...{% else %}{{ '<|im_start|>system\n...`.
// Templates store the newline either as a real newline or as a Jinja "\n" escape. Every
// "<|im_start|>system" opening is tried: the first whose text up to <|im_end|> is a plain literal
// (not built from variables or concatenations) is the default.
std::string chatml_default_system(const std::string& tmpl) {
  if (!contains(tmpl, "'system'") && !contains(tmpl, "\"system\"")) return "";
  for (const std::string open : {"<|im_start|>system\n", "<|im_start|>system\\n"}) {
    for (size_t a = tmpl.find(open); a != std::string::npos; a = tmpl.find(open, a + 1)) {
      const size_t from = a + open.size();
      const size_t b = tmpl.find("<|im_end|>", from);
      if (b == std::string::npos) break;
      std::string s = tmpl.substr(from, b - from);
      if (s.empty() || contains(s, "{") || contains(s, "}") || contains(s, "'") ||
          contains(s, "\"")) {
        continue;
      }
      // Undo the Jinja escape of a newline inside a string literal.
      for (size_t k = s.find("\\n"); k != std::string::npos; k = s.find("\\n", k + 1)) {
        s.replace(k, 2, "\n");
      }
      return s;
    }
  }
  return "";
}

}  // namespace

ChatTemplate ChatTemplate::detect(const gguf::File& f, const Tokenizer& tok) {
  ChatTemplate t;
  const std::string tmpl = f.get_string("tokenizer.chat_template", "");
  if (!tmpl.empty()) {
    if (contains(tmpl, "<|im_start|>")) {
      t.format = ChatFormat::kChatML;
      t.default_system = chatml_default_system(tmpl);
      return t;
    }
    if (contains(tmpl, "<|start_header_id|>")) {
      t.format = ChatFormat::kLlama3;
      return t;
    }
    if (contains(tmpl, "[INST]")) {
      t.format = ChatFormat::kMistral;
      return t;
    }
    if (contains(tmpl, "<start_of_turn>")) {
      t.format = ChatFormat::kGemma;
      return t;
    }
  }
  if (tok.find_token("<|im_start|>") >= 0) {
    t.format = ChatFormat::kChatML;
  } else if (tok.find_token("<|start_header_id|>") >= 0) {
    t.format = ChatFormat::kLlama3;
  } else if (tok.find_token("<start_of_turn>") >= 0) {
    t.format = ChatFormat::kGemma;
  } else if (tok.find_token("[INST]") >= 0 || tok.kind() == Tokenizer::Kind::kSentencePiece) {
    t.format = ChatFormat::kMistral;  // Llama-2 / Mistral style [INST] blocks
  } else {
    f.error("cannot tell the chat format: no known chat template and no ChatML, Llama-3 or "
            "[INST] or <start_of_turn> tokens in the vocabulary (supported: chatml, llama3, mistral, "
            "gemma)");
  }
  return t;
}

const char* ChatTemplate::name() const {
  switch (format) {
    case ChatFormat::kChatML: return "chatml";
    case ChatFormat::kLlama3: return "llama3";
    case ChatFormat::kMistral: return "mistral";
    case ChatFormat::kGemma: return "gemma";
  }
  return "?";
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt) const {
  for (const ChatMessage& m : messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant") {
      fail("unknown chat role '", m.role, "' (expected system, user or assistant)");
    }
  }
  std::string out;
  switch (format) {
    case ChatFormat::kChatML:
      if (!default_system.empty() && (messages.empty() || messages[0].role != "system")) {
        out += "<|im_start|>system\n" + default_system + "<|im_end|>\n";
      }
      for (const ChatMessage& m : messages) {
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    case ChatFormat::kLlama3:
      for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatFormat::kMistral: {
      // [INST] user [/INST]assistant</s>[INST] ... ; a system message prefixes the next user turn.
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system = m.content;
        } else if (m.role == "user") {
          out += "[INST] " + (system.empty() ? "" : system + "\n\n") + m.content + " [/INST]";
          system.clear();
        } else {
          out += m.content + "</s>";
        }
      }
      break;
    }
    case ChatFormat::kGemma: {
      // Gemma 2 / 3 turns: <start_of_turn>{user|model}\n{content}<end_of_turn>\n; Gemma has no
      // system role, its template puts a system message before the first user turn's text.
      std::string system;
      for (const ChatMessage& m : messages) {
        if (m.role == "system") {
          system = m.content;
          continue;
        }
        std::string content = m.content;
        if (m.role == "user" && !system.empty()) {
          content = system + "\n\n" + content;
          system.clear();
        }
        out += "<start_of_turn>" + std::string(m.role == "assistant" ? "model" : "user") + "\n" +
               content + "<end_of_turn>\n";
      }
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      break;
    }
  }
  return out;
}

}  // namespace fastkv
