# unit tests of tokenhelper/ modules
