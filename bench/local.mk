# bench build rules
