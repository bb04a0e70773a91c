#include "tokenhelper/store.h"
