# man build rules
