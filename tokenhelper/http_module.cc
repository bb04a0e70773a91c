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

HttpResult unavailable(const std::string& why) {
    HttpResult r;
    r.failure = HttpFailure::Policy;
    r.error = why;
    return r;
}
}  // namespace

std::string net_module_path() {
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

const NetModule* net_module(std::string& why) {
    static bool tried = false;
    static const NetModule* table = nullptr;
    static std::string error;
    std::lock_guard<std::mutex> g(load_mutex);
    if (!tried) {
        tried = true;
        std::string path = net_module_path();
        // The module stays loaded until exit: libcurl's global state is not
        // meant to be torn down while the process goes on.
        void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char* e = dlerror();
            error = "cannot load the network module " + path + " (" + (e ? e : "unknown error") +
                    "); reinstall mailoauth";
        } else {
            using Entry = const NetModule* (*)();
            auto entry = reinterpret_cast<Entry>(dlsym(h, MAILOAUTH_NET_MODULE_ENTRY));
            const NetModule* t = entry ? entry() : nullptr;
            if (!t || t->size != sizeof(NetModule))
                error = path + " is not mailoauth's network module of this version; reinstall mailoauth";
            else
                table = t;
        }
    }
    if (!table) why = error;
    return table;
}

LazyHttpClient::~LazyHttpClient() { delete impl_; }

HttpClient* LazyHttpClient::client(std::string& why) {
    if (!tried_) {
        tried_ = true;
        if (const NetModule* m = net_module(why)) {
            impl_ = m->new_client();
            if (!impl_) why = "libcurl could not be initialised";
        }
    } else if (!impl_) {
        net_module(why);
        if (why.empty()) why = "libcurl could not be initialised";
    }
    return impl_;
}

HttpResult LazyHttpClient::post_form(const std::string& url, const std::string& body,
                                     const HttpOptions& opts) {
    std::string why;
    HttpClient* c = client(why);
    if (!c) return unavailable(why);
    return c->post_form(url, body, opts);
}

HttpResult LazyHttpClient::get(const std::string& url, const HttpOptions& opts) {
    std::string why;
    HttpClient* c = client(why);
    if (!c) return unavailable(why);
    return c->get(url, opts);
}

bool LazyHttpClient::check_url(const std::string& url, bool allow_loopback_http, std::string& why) {
    HttpClient* c = client(why);
    return c && c->check_url(url, allow_loopback_http, why);
}

}  // namespace mailoauth
