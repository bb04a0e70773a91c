// Reading a credential (an app registration's client secret, a private key
// in PEM) from a file the administrator manages, or from standard input.
//
// The file is held to the store's rule: a regular file owned by the reader
// (the effective uid) with no group or other permission bits.  A secret
// that others can read is already leaked, and a file someone else owns can
// be swapped under us; either is refused with the command that fixes it.
// Symlinks are followed (systemd's credential directories and secret
// managers link to the real file); the check is on the file opened.
#ifndef MAILOAUTH_TOKENHELPER_SECRET_FILE_H
#define MAILOAUTH_TOKENHELPER_SECRET_FILE_H

#include <cstddef>
#include <string>

#include "common/secret.h"

namespace mailoauth {

// A client secret is under 100 bytes, an RSA 4096 key in PEM about 3.3 KiB,
// a certificate chain a few KiB.
constexpr std::size_t kMaxSecretFile = 64 * 1024;

// Reads path ("-": standard input, which is not checked for ownership) into
// out, without a trailing CR/LF.  what names the content in messages ("the
// client secret").  Returns false with err saying what is wrong and what to
// do; err never holds any of the file's bytes.
bool read_secret_file(const std::string& path, const std::string& what, Secret& out,
                      std::string& err, std::size_t max_bytes = kMaxSecretFile);

}  // namespace mailoauth

#endif
