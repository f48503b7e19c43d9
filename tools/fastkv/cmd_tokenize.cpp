// fastkv tokenize: show how a model's tokenizer splits a text.
//
//   fastkv tokenize MODEL.gguf "text"        one line per token: <id> '<piece>'; "[]" for none
//                                            (\n, \t, ... in the text are processed, as `run -p`)
//   fastkv tokenize MODEL.gguf -f FILE       the text is the file's contents (bytes as they are;
//                                            -f - reads standard input)
//   --no-escape                              take the text argument literally
//   --ids                                    only the ids, as [1, 15043, 3186]
//   --no-bos                                 do not prepend BOS even when the model asks for it
//   --no-parse-special                       treat special-token texts (<s>, <|im_end|>) as text
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "text_input.h"
#include "common/error.h"
#include "io/gguf.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace fastkv::cli {
namespace {

struct TokenizeFlags {
  std::string model, text, file;
  bool ids = false, no_bos = false, no_parse_special = false, no_escape = false;
};

// A piece between single quotes: backslash escapes for quotes, backslashes, control
// characters and bytes that are not part of valid UTF-8 (pieces can be partial characters).
std::string escape_piece(const std::string& s) {
  std::string r;
  for (size_t pos = 0; pos < s.size();) {
    const auto c = static_cast<unsigned char>(s[pos]);
    const size_t n = unicode::valid_sequence_length(s, pos);
    if (n > 1) {
      r.append(s, pos, n);
      pos += n;
      continue;
    }
    switch (c) {
      case '\n':
        r += "\\n";
        break;
      case '\t':
        r += "\\t";
        break;
      case '\r':
        r += "\\r";
        break;
      case '\\':
        r += "\\\\";
        break;
      case '\'':
        r += "\\'";
        break;
      default:
        if (c < 0x20 || c >= 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02X", c);
          r += buf;
        } else {
          r.push_back(static_cast<char>(c));
        }
    }
    ++pos;
  }
  return r;
}

void tokenize(const TokenizeFlags& flags, bool text_given, bool file_given) {
  if (text_given && file_given) {
    fail("tokenize: give the text either as an argument or with -f FILE, not both");
  }
  if (!text_given && !file_given) {
    fail("tokenize: no text: give it as an argument or with -f FILE");
  }
  const std::string text = !text_given     ? read_input_file(flags.file, "text")
                           : flags.no_escape ? flags.text
                                             : process_escapes(flags.text);
  const gguf::File f = gguf::File::open(flags.model);
  const std::unique_ptr<Tokenizer> tok = Tokenizer::from_gguf(f);
  const std::vector<int32_t> ids = tok->encode(text, !flags.no_bos, !flags.no_parse_special);

  std::string out;
  if (flags.ids || ids.empty()) {  // no tokens: an empty list rather than no output
    out += "[";
    for (size_t i = 0; i < ids.size(); ++i) out += cat(i ? ", " : "", ids[i]);
    out += "]\n";
  } else {
    for (int32_t id : ids) {
      out += cat(id, " '", escape_piece(tok->token_to_piece(id, /*render_special=*/true)), "'\n");
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void register_tokenize(CLI::App& app) {
  auto flags = std::make_shared<TokenizeFlags>();
  CLI::App* cmd = app.add_subcommand("tokenize", "show the tokens of a text");
  cmd->add_option("model", flags->model, "GGUF file with a tokenizer")->required();
  CLI::Option* text = cmd->add_option("text", flags->text, "text to tokenize");
  CLI::Option* file =
      cmd->add_option("-f,--file", flags->file, "read the text from FILE ('-' = standard input)");
  add_no_escape_flag(cmd, flags->no_escape);
  cmd->add_flag("--ids", flags->ids, "print only the ids, as [1, 2, 3]");
  cmd->add_flag("--no-bos", flags->no_bos, "do not prepend the BOS token");
  cmd->add_flag("--no-parse-special", flags->no_parse_special,
                "treat special-token texts as plain text");
  cmd->callback([flags, text, file] { tokenize(*flags, text->count() > 0, file->count() > 0); });
}

}  // namespace fastkv::cli
