#include "tokenhelper/oauth.h"
