#include "tokenhelper/device_flow.h"
