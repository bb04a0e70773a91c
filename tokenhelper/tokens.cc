#include "tokenhelper/tokens.h"
