// How long before its expiry a token counts as "about to expire".
//
// Exchange refuses tokens close to their expiry, so both the helper and the
// plugin's cache stop using a token `refresh_margin` seconds (600 by
// default) before it expires.  Some providers issue tokens that live no
// longer than that (Keycloak: 5 minutes; an Entra tenant may set 10): with
// the plain margin such a token is due for refresh the moment it arrives,
// and every login refreshes.  So the margin is clamped to a third of the
// token's issued lifetime (its expires_in), which leaves two thirds of the
// token's life to use it; tokens of an hour keep the configured margin.
#ifndef MAILOAUTH_COMMON_MARGIN_H
#define MAILOAUTH_COMMON_MARGIN_H

#include <cstdint>

namespace mailoauth {

// configured: the refresh_margin setting (seconds, >= 0).  lifetime: the
// lifetime the token was issued with; 0 or less means unknown (a record
// written before lifetimes were stored), and then the configured margin
// applies unchanged, as it always did.
constexpr long effective_refresh_margin(long configured, std::int64_t lifetime) {
    if (configured <= 0 || lifetime <= 0) return configured < 0 ? 0 : configured;
    const std::int64_t third = lifetime / 3;
    return third < configured ? static_cast<long>(third) : configured;
}

}  // namespace mailoauth

#endif
