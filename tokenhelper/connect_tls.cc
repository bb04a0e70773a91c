// The program's side of mailoauth-tls.so: finds and loads it (see
// connect_tls.h for why TLS is a module of its own).
#include "tokenhelper/connect_tls.h"

#include <dlfcn.h>

#include "tokenhelper/http_module.h"

namespace mailoauth {

const TlsModuleV1* tls_module(std::string& why) {
    // Only `connect` loads it, once, from one thread: no lock needed.
    static bool tried = false;
    static const TlsModuleV1* table = nullptr;
    static std::string error;
    if (!tried) {
        tried = true;
        // Beside the network module, wherever that is found: the build
        // tree's for a binary in its build tree, else the installed one.
        std::string path = net_module_path();
        path.erase(path.rfind('/') + 1);
        path += "mailoauth-tls.so";
        void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h) {
            const char* e = dlerror();
            error = "cannot load the TLS module " + path + " (" + (e ? e : "unknown error") +
                    "); reinstall mailoauth";
        } else {
            using Entry = const TlsModuleV1* (*)();
            auto entry = reinterpret_cast<Entry>(dlsym(h, MAILOAUTH_TLS_MODULE_ENTRY));
            const TlsModuleV1* t = entry ? entry() : nullptr;
            if (!t || t->size != sizeof(TlsModuleV1))
                error = path + " is not mailoauth's TLS module of this version; reinstall mailoauth";
            else
                table = t;
        }
    }
    if (!table) why = error;
    return table;
}

}  // namespace mailoauth
