// The registry of providers: one row per provider (see provider.h).
#include <algorithm>

#include "tokenhelper/provider.h"

namespace mailoauth {

extern const Provider kMicrosoftProvider;
extern const Provider kGoogleProvider;
extern const Provider kOidcProvider;

namespace {

// The first row is the default (and what records without a provider use).
const Provider* const kProviders[] = {
    &kMicrosoftProvider,
    &kGoogleProvider,
    &kOidcProvider,
};

}  // namespace

const Provider* find_provider(const std::string& name) {
    for (const Provider* p : kProviders)
        if (name == p->name) return p;
    return nullptr;
}

const Provider& default_provider() { return *kProviders[0]; }

std::vector<const Provider*> all_providers() { return {std::begin(kProviders), std::end(kProviders)}; }

std::string provider_names() {
    std::string out;
    for (const Provider* p : kProviders) out += (out.empty() ? "" : ", ") + std::string(p->name);
    return out;
}

const ProviderError* find_provider_error(const ProviderError* table, std::size_t n, const OAuthError& e) {
    // A numbered code is the more precise: Microsoft sends invalid_grant
    // for very different causes and tells them apart by AADSTS number.
    for (long code : e.error_codes)
        for (std::size_t i = 0; i < n; ++i)
            if (table[i].code != 0 && table[i].code == code) return &table[i];
    for (std::size_t i = 0; i < n; ++i)
        if (table[i].word != nullptr && e.error == table[i].word) return &table[i];
    return nullptr;
}

std::string strip_trailing_slashes(std::string url) {
    while (!url.empty() && url.back() == '/') url.pop_back();
    return url;
}

bool scope_has(const std::string& scope, const std::string& word) {
    std::size_t at = 0;
    while (at <= scope.size()) {
        std::size_t end = scope.find(' ', at);
        if (end == std::string::npos) end = scope.size();
        if (scope.compare(at, end - at, word) == 0) return true;
        at = end + 1;
    }
    return false;
}

}  // namespace mailoauth
