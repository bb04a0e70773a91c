#include "tokenhelper/settings.h"
