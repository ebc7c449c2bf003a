// The exception types gradtape throws. Every message is one line: the operation and node (or layer,
// or file), what disagrees, and the shapes involved.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ad {

// Base of every gradtape error.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A graph was built wrongly: bad axis, statically known shape mismatch, bad variable reuse.
class ValueError : public Error {
 public:
  using Error::Error;
};

// Run-time values are wrong: a fed shape that does not fit, a batch that does not divide.
class InvalidArgumentError : public Error {
 public:
  using Error::Error;
};

// The state does not allow the operation: reading an uninitialized variable.
class FailedPreconditionError : public Error {
 public:
  using Error::Error;
};

// Something named does not exist: a variable missing from a checkpoint, a missing file.
class NotFoundError : public Error {
 public:
  using Error::Error;
};

// A file is truncated, corrupted or of another format.
class DataLossError : public Error {
 public:
  using Error::Error;
};

// A configured resource limit (such as a session's memory cap) would be exceeded.
class ResourceExhaustedError : public Error {
 public:
  using Error::Error;
};

// A value is outside the range an operation accepts (such as an index past the end).
class OutOfRangeError : public Error {
 public:
  using Error::Error;
};

// An invariant of gradtape itself broke; please report it.
class InternalError : public Error {
 public:
  using Error::Error;
};

// Concatenates the streamable arguments into one string: str("axis ", 3, " of ", shape).
template <class... Args>
[[nodiscard]] std::string str(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

}  // namespace ad
