// UTF-8 helpers and the byte-level alphabet used by the tokenizers.
//
// Nothing here assumes valid input: every function accepts arbitrary bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fastkv::unicode {

// Length of the valid UTF-8 sequence that starts at text[pos] (1 to 4), or 0 when the bytes
// there are not a valid, complete, shortest-form sequence of a code point (surrogates and
// values above U+10FFFF are invalid).
size_t valid_sequence_length(std::string_view text, size_t pos);

// Length of the next "character" at text[pos]: the valid sequence's length, or 1 for a byte
// that does not start a valid sequence (so that any byte string splits into characters).
inline size_t char_length(std::string_view text, size_t pos) {
  size_t n = valid_sequence_length(text, pos);
  return n == 0 ? 1 : n;
}

// Whether the whole string is valid UTF-8.
bool is_valid_utf8(std::string_view text);

// Number of bytes at the end of `text` that form the beginning of a valid multi-byte sequence
// still waiting for continuation bytes (0 when the text ends on a complete character or on
// bytes that can never become valid).
size_t incomplete_tail_length(std::string_view text);

// Appends the UTF-8 encoding of code point `cp` (must be <= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cp);

// Decodes the valid sequence at text[pos] of length n (from valid_sequence_length).
uint32_t decode_sequence(std::string_view text, size_t pos, size_t n);

// The byte-level BPE alphabet (GPT-2): every byte is shown as a printable code point. Bytes
// '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves; the other 68 bytes are numbered
// from U+0100 upwards in byte order (so ' ' is U+0120 'Ġ' and '\n' is U+010A 'Ċ').
uint32_t byte_to_codepoint(uint8_t b);
// The byte a code point stands for, or -1 when it is not part of the alphabet.
int codepoint_to_byte(uint32_t cp);
// UTF-8 of byte_to_codepoint(b).
const std::string& byte_to_utf8(uint8_t b);

}  // namespace fastkv::unicode
