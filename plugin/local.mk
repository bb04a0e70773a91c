# plugin build rules
