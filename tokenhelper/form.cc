#include "tokenhelper/form.h"
