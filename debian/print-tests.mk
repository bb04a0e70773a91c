# Included after the build tree's Makefile by debian/rules: prints the TESTS
# automake computed, so the package build can choose among them.
mailoauth-print-tests:
	@echo $(TESTS)
.PHONY: mailoauth-print-tests
