#include "tests/plugin/fake_sasl_utils.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace mailoauth::test {

namespace {
// malloc and free get no connection: they count against the live fake.
FakeSaslUtils* g_current = nullptr;

// libsasl2 stores every callback as int (*)(void); each is called through
// its real type.  memcpy, not a cast: -Wcast-function-type.
template <typename F>
sasl_callback_ft as_callback(F* f) {
    static_assert(sizeof(sasl_callback_ft) == sizeof f, "function pointer sizes");
    sasl_callback_ft out;
    std::memcpy(&out, &f, sizeof out);
    return out;
}

std::string vformat(const char* fmt, va_list ap) {
    char buf[4096];
    std::vsnprintf(buf, sizeof buf, fmt, ap);
    return buf;
}
}  // namespace

FakeSaslUtils::FakeSaslUtils() {
    g_current = this;
    utils_.conn = reinterpret_cast<sasl_conn_t*>(this);
    utils_.malloc = &fake_malloc;
    utils_.calloc = &fake_calloc;
    utils_.realloc = &fake_realloc;
    utils_.free = &fake_free;
    utils_.getcallback = &getcallback;
    utils_.log = &log;
    utils_.seterror = &seterror;
}

FakeSaslUtils::~FakeSaslUtils() {
    if (g_current == this) g_current = nullptr;
}

FakeSaslUtils* FakeSaslUtils::self(sasl_conn_t* conn) { return reinterpret_cast<FakeSaslUtils*>(conn); }

void FakeSaslUtils::set_simple(unsigned long id, const std::string& value) {
    callbacks_[id] = Callback{Kind::Value, value, SASL_OK};
}

void FakeSaslUtils::set_interact(unsigned long id) { callbacks_[id] = Callback{Kind::Interact, "", SASL_OK}; }

void FakeSaslUtils::set_callback_error(unsigned long id, int code) {
    callbacks_[id] = Callback{Kind::Error, "", code};
}

void FakeSaslUtils::set_getpath(const std::string& dirs) {
    has_getpath_ = true;
    getpath_ = dirs;
}

std::string FakeSaslUtils::all_logs() const {
    std::string all;
    for (const auto& l : logs) all += l.second + "\n";
    return all;
}

sasl_client_params_t* FakeSaslUtils::params(const std::string& service, const std::string& fqdn,
                                            const std::string& remote) {
    service_ = service;
    fqdn_ = fqdn;
    remote_ = remote;
    supp_.clear();
    if (listed_set_) {
        for (unsigned long id : listed_override_) supp_.push_back({id, nullptr, nullptr});
    } else {
        for (const auto& c : callbacks_) supp_.push_back({c.first, nullptr, nullptr});
    }
    supp_.push_back({SASL_CB_LIST_END, nullptr, nullptr});

    params_ = sasl_client_params_t{};
    params_.service = service_.empty() ? nullptr : service_.c_str();
    params_.servicelen = static_cast<unsigned>(service_.size());
    params_.serverFQDN = fqdn_.empty() ? nullptr : fqdn_.c_str();
    params_.slen = static_cast<unsigned>(fqdn_.size());
    params_.ipremoteport = remote_.empty() ? nullptr : remote_.c_str();
    params_.ipremlen = static_cast<unsigned>(remote_.size());
    params_.utils = &utils_;
    params_.prompt_supp = supp_.data();
    params_.canon_user = &canon_user;
    return &params_;
}

int FakeSaslUtils::getcallback(sasl_conn_t* conn, unsigned long id, sasl_callback_ft* proc, void** ctx) {
    FakeSaslUtils* f = self(conn);
    if (f == nullptr) f = g_current;  // plugin init passes no connection
    *proc = nullptr;
    *ctx = nullptr;
    if (id == SASL_CB_GETPATH) {
        if (!f->has_getpath_) return SASL_FAIL;
        *proc = as_callback(&getpath);
        *ctx = f;
        return SASL_OK;
    }
    auto it = f->callbacks_.find(id);
    if (it == f->callbacks_.end()) return SASL_FAIL;
    if (it->second.kind == Kind::Interact) return SASL_INTERACT;
    *proc = as_callback(&getsimple);
    *ctx = &it->second;
    return SASL_OK;
}

int FakeSaslUtils::getsimple(void* ctx, int, const char** result, unsigned* len) {
    const Callback* c = static_cast<const Callback*>(ctx);
    if (c->kind == Kind::Error) return c->code;
    *result = c->value.c_str();
    if (len) *len = static_cast<unsigned>(c->value.size());
    return SASL_OK;
}

int FakeSaslUtils::getpath(void* ctx, const char** path) {
    *path = static_cast<FakeSaslUtils*>(ctx)->getpath_.c_str();
    return SASL_OK;
}

void* FakeSaslUtils::fake_malloc(size_t n) {
    FakeSaslUtils* f = g_current;
    if (f && f->malloc_budget_ == 0) return nullptr;
    if (f && f->malloc_budget_ > 0) --f->malloc_budget_;
    void* p = std::malloc(n ? n : 1);
    if (p && f) ++f->live_;
    return p;
}

void* FakeSaslUtils::fake_calloc(size_t n, size_t size) {
    void* p = fake_malloc(n * size);
    if (p) std::fill_n(static_cast<char*>(p), n * size, '\0');
    return p;
}

void* FakeSaslUtils::fake_realloc(void* p, size_t n) {
    if (p == nullptr) return fake_malloc(n);
    return std::realloc(p, n ? n : 1);
}

void FakeSaslUtils::fake_free(void* p) {
    if (p && g_current) --g_current->live_;
    std::free(p);
}

void FakeSaslUtils::seterror(sasl_conn_t* conn, unsigned, const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    self(conn)->last_error = vformat(fmt, ap);
    va_end(ap);
}

void FakeSaslUtils::log(sasl_conn_t* conn, int level, const char* fmt, ...) {
    FakeSaslUtils* f = conn ? self(conn) : g_current;
    va_list ap;
    va_start(ap, fmt);
    std::string line = vformat(fmt, ap);
    va_end(ap);
    if (f) f->logs.emplace_back(level, line);
}

int FakeSaslUtils::canon_user(sasl_conn_t* conn, const char* in, unsigned len, unsigned flags,
                              sasl_out_params_t* oparams) {
    FakeSaslUtils* f = self(conn);
    if (f->canon_result != SASL_OK) return f->canon_result;
    std::string name = len ? std::string(in, len) : std::string(in);
    if (flags & SASL_CU_AUTHID) {
        f->canon_authid = name;
        oparams->authid = f->canon_authid.c_str();
        oparams->alen = static_cast<unsigned>(f->canon_authid.size());
    }
    if (flags & SASL_CU_AUTHZID) {
        f->canon_authzid = name;
        oparams->user = f->canon_authzid.c_str();
        oparams->ulen = static_cast<unsigned>(f->canon_authzid.size());
    }
    return SASL_OK;
}

}  // namespace mailoauth::test
