#include "common/sasl_modules.h"

#include <dirent.h>

#include <cstring>

namespace mailoauth::sasl_modules {

Found scan(const std::string& dirs) {
    Found out;
    std::size_t pos = 0;
    while (pos <= dirs.size()) {
        std::size_t colon = dirs.find(':', pos);
        std::string dir = dirs.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
        pos = colon == std::string::npos ? dirs.size() + 1 : colon + 1;
        if (dir.empty()) continue;
        DIR* d = ::opendir(dir.c_str());
        if (d == nullptr) continue;
        while (struct dirent* e = ::readdir(d)) {
            const char* n = e->d_name;
            std::size_t len = std::strlen(n);
            if (len < 4 || std::strcmp(n + len - 3, ".so") != 0) continue;
            if (std::strcmp(n, kOurModule) == 0)
                out.ours.push_back(dir + "/" + n);
            else if (std::strstr(n, "xoauth2") != nullptr || std::strstr(n, "oauthbearer") != nullptr)
                out.rivals.push_back(dir + "/" + n);
        }
        ::closedir(d);
    }
    return out;
}

}  // namespace mailoauth::sasl_modules
