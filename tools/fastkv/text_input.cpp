#include "text_input.h"

#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "common/error.h"
#include "common/files.h"

namespace fastkv::cli {

std::string process_escapes(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 == text.size()) {
      out.push_back(text[i]);
      continue;
    }
    char replacement = 0;
    switch (text[i + 1]) {
      case 'n': replacement = '\n'; break;
      case 't': replacement = '\t'; break;
      case 'r': replacement = '\r'; break;
      case '\\': replacement = '\\'; break;
      case '"': replacement = '"'; break;
      case '\'': replacement = '\''; break;
      default:  // not an escape we know: keep the backslash and the character
        out.push_back('\\');
        continue;
    }
    out.push_back(replacement);
    ++i;
  }
  return out;
}

std::string read_input_file(const std::string& path, const std::string& what) {
  if (path == "-") {
    std::string s{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
    if (std::cin.bad()) fail("standard input: cannot read the ", what);
    return s;
  }
  return read_file(path, what + " file");
}

void add_no_escape_flag(CLI::App* cmd, bool& no_escape) {
  cmd->add_flag("--no-escape", no_escape,
                "take the text given on the command line literally (by default \\n, \\t, \\r, "
                "\\\\, \\\" and \\' are turned into the characters they name)");
}

}  // namespace fastkv::cli
