// Closes a file descriptor when it goes out of scope, so that no early
// return leaks one (the plugin lives in long-running programs such as
// Postfix's smtp client, the agent serves for months).
#ifndef MAILOAUTH_COMMON_FD_H
#define MAILOAUTH_COMMON_FD_H

#include <unistd.h>

namespace mailoauth {

class Fd {
public:
    explicit Fd(int fd = -1) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }
    int get() const { return fd_; }
    int release() {
        int f = fd_;
        fd_ = -1;
        return f;
    }
    void reset(int fd = -1) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_;
};

}  // namespace mailoauth

#endif
