#include "tokenhelper/commands.h"
