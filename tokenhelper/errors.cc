#include "tokenhelper/errors.h"
