# integration tests of the helper against the fake IdP
