#include "tokenhelper/http_module.h"

#include <dlfcn.h>
#include <limits.h>
#include <mutex>
#include <unistd.h>

#ifndef MAILOAUTH_PKGLIBDIR
#define MAILOAUTH_PKGLIBDIR "/usr/lib/mailoauth"
#endif

namespace mailoauth {

namespace {
constexpr const char* kModuleName = "mailoauth-curl.so";
std::mutex load_mutex;  // the agent's threads may race to the first request
}  // namespace

std::string http_module_path() {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        std::string dir(exe, static_cast<std::size_t>(n));
        dir.erase(dir.rfind('/') == std::string::npos ? 0 : dir.rfind('/'));
        // A binary in its build tree uses the module built beside it, never
        // an older installed one.
        std::string built = dir + "/tokenhelper/.libs/" + kModuleName;
        if (access(built.c_str(), R_OK) == 0) return built;
    }
    return std::string(MAILOAUTH_PKGLIBDIR) + "/" + kModuleName;
}

LazyHttpClient::~LazyHttpClient() {
    // The module stays loaded until exit: libcurl's global state is not
    // meant to be torn down while the process goes on.
    delete impl_;
}

HttpClient* LazyHttpClient::get(std::string& why) {
    std::lock_guard<std::mutex> g(load_mutex);
    if (!tried_) {
        tried_ = true;
        std::string path = http_module_path();
        void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char* e = dlerror();
            load_error_ = "cannot load the HTTP module " + path + " (" + (e ? e : "unknown error") +
                          "); reinstall mailoauth";
        } else {
            using Entry = HttpClient* (*)();
            auto entry = reinterpret_cast<Entry>(dlsym(h, MAILOAUTH_HTTP_MODULE_ENTRY));
            if (!entry) load_error_ = path + " is not mailoauth's HTTP module of this version; reinstall mailoauth";
            else if (!(impl_ = entry())) load_error_ = "libcurl could not be initialised";
        }
    }
    if (!impl_) why = load_error_;
    return impl_;
}

HttpResult LazyHttpClient::post_form(const std::string& url, const std::string& body,
                                     const HttpOptions& opts) {
    std::string why;
    HttpClient* c = get(why);
    if (!c) {
        HttpResult r;
        r.failure = HttpFailure::Policy;
        r.error = why;
        return r;
    }
    return c->post_form(url, body, opts);
}

bool LazyHttpClient::check_url(const std::string& url, bool allow_loopback_http, std::string& why) {
    HttpClient* c = get(why);
    return c && c->check_url(url, allow_loopback_http, why);
}

}  // namespace mailoauth
