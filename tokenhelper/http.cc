#include "tokenhelper/http.h"
