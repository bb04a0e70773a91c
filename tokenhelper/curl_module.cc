// Entry point of mailoauth-curl.so, the module that holds the HTTP stack
// (see http_module.h for why it is a module).
#include "tokenhelper/http_module.h"

#include <new>

extern "C" __attribute__((visibility("default"))) mailoauth::HttpClient* mailoauth_http_module_new_v1() {
    try {
        mailoauth::http_global_init();
        return new (std::nothrow) mailoauth::CurlHttpClient;
    } catch (...) {
        return nullptr;
    }
}
