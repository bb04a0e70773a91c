// The providers (tokenhelper/provider_*.cc, providers.cc): endpoints per
// cloud and tenant, scopes, mail hosts, OpenID Connect discovery through a
// fake HttpClient (good, bad and hostile documents), error explanations,
// and the device flow's answer to a tenant that blocks it (AADSTS53003).
#include <cppunit/extensions/HelperMacros.h>

#include <map>
#include <string>
#include <vector>

#include "tests/unit/fake_http.h"
#include "tokenhelper/device_flow.h"
#include "tokenhelper/errors.h"
#include "tokenhelper/http.h"
#include "tokenhelper/provider.h"
#include "tokenhelper/tokens.h"

using namespace mailoauth;

namespace {

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

using testutil::FakeHttp;

const Provider& provider(const char* name) {
    const Provider* p = find_provider(name);
    CPPUNIT_ASSERT_MESSAGE(name, p != nullptr);
    return *p;
}

struct EndpointsOut {
    bool ok;
    Endpoints e;
    std::string why;
    int code;
};

EndpointsOut endpoints_of(const Provider& p, const ProviderSettings& s, HttpClient& http) {
    EndpointsOut o;
    o.code = 0;
    o.ok = p.endpoints(s, http, o.e, o.why, o.code);
    return o;
}

const char* const kIssuer = "https://id.example.org/realms/mail";
const std::string kDiscovery = std::string(kIssuer) + "/.well-known/openid-configuration";

std::string document(const std::string& issuer, const std::string& token, const std::string& extra = "") {
    return "{\"issuer\":\"" + issuer + "\",\"token_endpoint\":\"" + token + "\"" + extra + "}";
}

class QuietUI : public DeviceFlowUI {
public:
    void show_code(const DeviceCodeResponse&) override {}
    void waiting(long, long) override {}
    void note(const std::string&) override {}
    void done() override {}
};

DeviceFlowClock fake_clock(double* t) {
    DeviceFlowClock c;
    c.now = [t] { return *t; };
    c.sleep = [t](double s) { *t += s; };
    return c;
}

class ProvidersTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ProvidersTest);
    CPPUNIT_TEST(registry_lists_and_finds);
    CPPUNIT_TEST(microsoft_endpoints_per_cloud_and_tenant);
    CPPUNIT_TEST(microsoft_authority_overrides_host_cloud_keeps_scopes);
    CPPUNIT_TEST(microsoft_unknown_cloud_is_usage);
    CPPUNIT_TEST(microsoft_scopes_and_hosts);
    CPPUNIT_TEST(google_fixed_endpoints_scope_and_rules);
    CPPUNIT_TEST(google_errors_explained);
    CPPUNIT_TEST(oidc_discovery_good);
    CPPUNIT_TEST(oidc_discovery_bad_and_hostile_table);
    CPPUNIT_TEST(oidc_discovery_http_failures);
    CPPUNIT_TEST(oidc_explicit_endpoints);
    CPPUNIT_TEST(oidc_needs_issuer_or_endpoint);
    CPPUNIT_TEST(device_flow_blocked_names_browser_command);
    CPPUNIT_TEST(device_flow_uses_endpoints_and_client_secret);
    CPPUNIT_TEST(refresh_lifetimes);
    CPPUNIT_TEST(refresh_uses_stored_endpoint_and_secret);
    CPPUNIT_TEST_SUITE_END();

public:
    void registry_lists_and_finds() {
        CPPUNIT_ASSERT_EQUAL(std::string("microsoft"), std::string(default_provider().name));
        CPPUNIT_ASSERT_EQUAL(std::string("microsoft, google, oidc"), provider_names());
        CPPUNIT_ASSERT(find_provider("nonesuch") == nullptr);
        CPPUNIT_ASSERT(find_provider("") == nullptr);
        for (const Provider* p : all_providers()) {
            CPPUNIT_ASSERT(find_provider(p->name) == p);
            CPPUNIT_ASSERT(p->endpoints != nullptr && p->default_scope != nullptr && p->mail_hosts != nullptr);
        }
    }

    void microsoft_endpoints_per_cloud_and_tenant() {
        FakeHttp http;
        struct Case {
            const char* cloud;
            const char* tenant;
            const char* base;
        };
        const Case cases[] = {
            {"", "", "https://login.microsoftonline.com/organizations"},
            {"global", "contoso.com", "https://login.microsoftonline.com/contoso.com"},
            {"", "consumers", "https://login.microsoftonline.com/consumers"},
            {"usgov", "contoso.us", "https://login.microsoftonline.us/contoso.us"},
            {"usgov-dod", "", "https://login.microsoftonline.us/organizations"},
            {"china", "contoso.partner.onmschina.cn", "https://login.partner.microsoftonline.cn/contoso.partner.onmschina.cn"},
        };
        for (const Case& c : cases) {
            ProviderSettings s;
            s.cloud = c.cloud;
            s.tenant = c.tenant;
            EndpointsOut o = endpoints_of(provider("microsoft"), s, http);
            CPPUNIT_ASSERT_MESSAGE(c.base, o.ok);
            const std::string base = c.base;
            CPPUNIT_ASSERT_EQUAL(base, o.e.authority);
            CPPUNIT_ASSERT_EQUAL(base + "/oauth2/v2.0/token", o.e.token);
            CPPUNIT_ASSERT_EQUAL(base + "/oauth2/v2.0/devicecode", o.e.device);
            CPPUNIT_ASSERT_EQUAL(base + "/oauth2/v2.0/authorize", o.e.authorization);
        }
        CPPUNIT_ASSERT(http.requests.empty());  // no network for Microsoft
    }

    void microsoft_authority_overrides_host_cloud_keeps_scopes() {
        FakeHttp http;
        ProviderSettings s;
        s.cloud = "usgov";
        s.tenant = "ignored";
        s.authority = "https://127.0.0.1:4443/tenant-x//";
        EndpointsOut o = endpoints_of(provider("microsoft"), s, http);
        CPPUNIT_ASSERT(o.ok);
        CPPUNIT_ASSERT_EQUAL(std::string("https://127.0.0.1:4443/tenant-x/oauth2/v2.0/token"), o.e.token);
        CPPUNIT_ASSERT(contains(provider("microsoft").default_scope(s), "https://outlook.office365.us/IMAP.AccessAsUser.All"));
    }

    void microsoft_unknown_cloud_is_usage() {
        FakeHttp http;
        ProviderSettings s;
        s.cloud = "germany";
        EndpointsOut o = endpoints_of(provider("microsoft"), s, http);
        CPPUNIT_ASSERT(!o.ok);
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(kExitUsage), o.code);
        CPPUNIT_ASSERT(contains(o.why, "usgov-dod"));
    }

    void microsoft_scopes_and_hosts() {
        struct Case {
            const char* cloud;
            const char* tenant;
            const char* prefix;
            const char* imap;
            const char* smtp;
        };
        const Case cases[] = {
            {"", "", "https://outlook.office.com/", "outlook.office365.com", "smtp.office365.com"},
            {"", "consumers", "https://outlook.office.com/", "outlook.office365.com", "smtp-mail.outlook.com"},
            {"usgov", "", "https://outlook.office365.us/", "outlook.office365.us", "smtp.office365.us"},
            {"usgov-dod", "", "https://outlook-dod.office365.us/", "outlook-dod.office365.us", ""},
            {"china", "", "https://partner.outlook.cn/", "partner.outlook.cn", "smtp.partner.outlook.cn"},
        };
        for (const Case& c : cases) {
            ProviderSettings s;
            s.cloud = c.cloud;
            s.tenant = c.tenant;
            const std::string p = c.prefix;
            CPPUNIT_ASSERT_EQUAL(p + "IMAP.AccessAsUser.All " + p + "POP.AccessAsUser.All " + p +
                                     "SMTP.Send offline_access",
                                 provider("microsoft").default_scope(s));
            MailHosts h = provider("microsoft").mail_hosts(s);
            CPPUNIT_ASSERT_EQUAL(std::string(c.imap), h.imap);
            CPPUNIT_ASSERT_EQUAL(std::string(c.smtp), h.smtp);
        }
        std::string host, prefix;
        CPPUNIT_ASSERT(microsoft_cloud("china", host, prefix));
        CPPUNIT_ASSERT_EQUAL(std::string("https://login.partner.microsoftonline.cn"), host);
        CPPUNIT_ASSERT(!microsoft_cloud("mars", host, prefix));
    }

    void google_fixed_endpoints_scope_and_rules() {
        FakeHttp http;
        const Provider& g = provider("google");
        ProviderSettings s;
        EndpointsOut o = endpoints_of(g, s, http);
        CPPUNIT_ASSERT(o.ok);
        CPPUNIT_ASSERT_EQUAL(std::string("https://oauth2.googleapis.com/token"), o.e.token);
        CPPUNIT_ASSERT_EQUAL(std::string("https://accounts.google.com/o/oauth2/v2/auth"), o.e.authorization);
        CPPUNIT_ASSERT(o.e.authority.empty());
        s.token_endpoint = "https://127.0.0.1:9/google/token";
        o = endpoints_of(g, s, http);
        CPPUNIT_ASSERT_EQUAL(s.token_endpoint, o.e.token);
        CPPUNIT_ASSERT_EQUAL(std::string("https://mail.google.com/"), g.default_scope(s));
        CPPUNIT_ASSERT(g.requires_client_secret);
        CPPUNIT_ASSERT(contains(g.authorize_extra, "access_type=offline"));
        CPPUNIT_ASSERT(contains(g.device_flow_refusal("https://mail.google.com/"), "--browser"));
        CPPUNIT_ASSERT(contains(g.device_flow_refusal("openid https://mail.google.com/ email"), "device"));
        CPPUNIT_ASSERT_EQUAL(std::string(), g.device_flow_refusal("openid email"));
        MailHosts h = g.mail_hosts(s);
        CPPUNIT_ASSERT_EQUAL(std::string("imap.gmail.com"), h.imap);
        CPPUNIT_ASSERT_EQUAL(std::string("smtp.gmail.com"), h.smtp);
        CPPUNIT_ASSERT(!provider("microsoft").requires_client_secret);
    }

    void google_errors_explained() {
        ErrorContext ctx;
        ctx.account = "bob@gmail.com";
        ctx.client_id = "123.apps.googleusercontent.com";
        ctx.provider = &provider("google");
        Explanation x = explain_error_reply(400, "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}", ctx);
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(kExitNoPerm), x.exit_code);
        CPPUNIT_ASSERT(contains(x.message, "7 days"));
        CPPUNIT_ASSERT(contains(x.message, "mailoauth login bob@gmail.com"));
        x = explain_error_reply(401, "{\"error\":\"invalid_client\"}", ctx);
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(kExitConfig), x.exit_code);
        CPPUNIT_ASSERT(contains(x.message, "123.apps.googleusercontent.com"));
        // Microsoft's numbered codes mean nothing to Google's table.
        x = explain_error_reply(400, "{\"error\":\"invalid_grant\",\"error_codes\":[53003]}", ctx);
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(kExitNoPerm), x.exit_code);
        // And Microsoft's table is the default (records without a provider).
        ctx.provider = nullptr;
        x = explain_error_reply(400, "{\"error\":\"invalid_grant\",\"error_codes\":[53003]}", ctx);
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(kExitConfig), x.exit_code);
    }

    void oidc_discovery_good() {
        FakeHttp http;
        http.answer(kDiscovery, 200,
                    document(kIssuer, "https://id.example.org/realms/mail/protocol/openid-connect/token",
                             ",\"authorization_endpoint\":\"https://id.example.org/auth\","
                             "\"device_authorization_endpoint\":\"https://id.example.org/device\","
                             "\"jwks_uri\":\"https://id.example.org/certs\",\"scopes_supported\":[\"openid\"]"));
        ProviderSettings s;
        s.issuer = std::string(kIssuer) + "/";  // a trailing slash as typed
        EndpointsOut o = endpoints_of(provider("oidc"), s, http);
        CPPUNIT_ASSERT_MESSAGE(o.why, o.ok);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), http.requests.size());
        CPPUNIT_ASSERT_EQUAL(std::string("GET"), http.requests[0].method);
        CPPUNIT_ASSERT_EQUAL(kDiscovery, http.requests[0].url);
        CPPUNIT_ASSERT_EQUAL(std::string(kIssuer), o.e.issuer);
        CPPUNIT_ASSERT_EQUAL(std::string("https://id.example.org/realms/mail/protocol/openid-connect/token"), o.e.token);
        CPPUNIT_ASSERT_EQUAL(std::string("https://id.example.org/device"), o.e.device);
        CPPUNIT_ASSERT_EQUAL(std::string("https://id.example.org/auth"), o.e.authorization);
        CPPUNIT_ASSERT_EQUAL(std::string("openid offline_access"), provider("oidc").default_scope(s));
        // An explicit endpoint wins over the discovered one.
        http.answer(kDiscovery, 200, document(kIssuer, "https://id.example.org/token"));
        s.device_endpoint = "https://id.example.org/other-device";
        o = endpoints_of(provider("oidc"), s, http);
        CPPUNIT_ASSERT(o.ok);
        CPPUNIT_ASSERT_EQUAL(s.device_endpoint, o.e.device);
        // Loopback http with --allow-insecure-http (tests).
        const std::string local = "http://127.0.0.1:8080/realms/t";
        http.answer(local + "/.well-known/openid-configuration", 200, document(local, local + "/token"));
        ProviderSettings l;
        l.issuer = local;
        l.allow_insecure_http = true;
        o = endpoints_of(provider("oidc"), l, http);
        CPPUNIT_ASSERT_MESSAGE(o.why, o.ok);
        CPPUNIT_ASSERT_EQUAL(local + "/token", o.e.token);
    }

    void oidc_discovery_bad_and_hostile_table() {
        struct Case {
            std::string body;
            const char* why;
        };
        const std::string tok = "https://id.example.org/token";
        const std::vector<Case> cases = {
            {"not json", "not valid JSON"},
            {"[1,2]", "not a JSON object"},
            {"{\"token_endpoint\":\"" + tok + "\"}", "no issuer"},
            {"{\"issuer\":\"" + std::string(kIssuer) + "\"}", "no token_endpoint"},
            {"{\"issuer\":5,\"token_endpoint\":\"" + tok + "\"}", "issuer is not a string"},
            // Another issuer speaking for this one.
            {document("https://evil.example.net/realms/mail", tok), "names another issuer"},
            // Endpoints that are not https, not absolute, or not clean.
            {document(kIssuer, "http://id.example.org/token"), "token endpoint"},
            {document(kIssuer, "/token"), "token endpoint"},
            {document(kIssuer, "file:///etc/passwd"), "token endpoint"},
            {document(kIssuer, tok, ",\"device_authorization_endpoint\":\"http://127.0.0.1/device\""), "device endpoint"},
            {document(kIssuer, tok, ",\"authorization_endpoint\":\"javascript:alert(1)\""), "authorization endpoint"},
            {document(kIssuer, "https://id.example.org/to ken"), "not a URL"},
            {document(kIssuer, "https://id.example.org/\\u001b[31mtoken"), "not a URL"},
            {document(kIssuer, tok, ",\"issuer\":\"dup\""), "not valid JSON"},
            {document(kIssuer, "https://id.example.org/" + std::string(5000, 'a')), "longer than"},
            {std::string(70 * 1024, ' ') + document(kIssuer, tok), "could not read"},
        };
        for (const Case& c : cases) {
            FakeHttp http;
            http.answer(kDiscovery, 200, c.body);
            ProviderSettings s;
            s.issuer = kIssuer;
            EndpointsOut o = endpoints_of(provider("oidc"), s, http);
            CPPUNIT_ASSERT_MESSAGE(c.why, !o.ok);
            CPPUNIT_ASSERT_MESSAGE(std::string(c.why) + " / got: " + o.why, contains(o.why, c.why));
            CPPUNIT_ASSERT_MESSAGE(o.why, o.code == kExitConfig || o.code == kExitTempFail);
            // Whatever the document held, the message is one clean line.
            for (char ch : o.why) CPPUNIT_ASSERT_MESSAGE(o.why, static_cast<unsigned char>(ch) >= 0x20);
        }
        // A hostile issuer name is quoted sanitized.
        FakeHttp http;
        http.answer(kDiscovery, 200, document("https://x\\u001b]0;pwned\\u0007", tok));
        ProviderSettings s;
        s.issuer = kIssuer;
        EndpointsOut o = endpoints_of(provider("oidc"), s, http);
        CPPUNIT_ASSERT(!o.ok);
        CPPUNIT_ASSERT(!contains(o.why, "\x1b"));
        // An http issuer without --allow-insecure-http is refused before any request.
        FakeHttp none;
        s.issuer = "http://id.example.org";
        o = endpoints_of(provider("oidc"), s, none);
        CPPUNIT_ASSERT(!o.ok);
        CPPUNIT_ASSERT(none.requests.empty());
    }

    void oidc_discovery_http_failures() {
        struct Case {
            long status;
            HttpFailure failure;
            int code;
        };
        const Case cases[] = {
            {404, HttpFailure::None, kExitConfig},
            {503, HttpFailure::None, kExitTempFail},
            {0, HttpFailure::Transport, kExitTempFail},
            {0, HttpFailure::Tls, kExitConfig},
            {0, HttpFailure::Policy, kExitConfig},
        };
        for (const Case& c : cases) {
            FakeHttp http;
            if (c.failure == HttpFailure::None) http.answer(kDiscovery, c.status, "<html>nope</html>");
            else http.fail(kDiscovery, c.failure);
            ProviderSettings s;
            s.issuer = kIssuer;
            EndpointsOut o = endpoints_of(provider("oidc"), s, http);
            CPPUNIT_ASSERT(!o.ok);
            CPPUNIT_ASSERT_EQUAL(c.code, o.code);
            CPPUNIT_ASSERT(contains(o.why, kDiscovery));
        }
    }

    void oidc_explicit_endpoints() {
        FakeHttp http;
        ProviderSettings s;
        s.token_endpoint = "https://sso.example.com/token";
        s.device_endpoint = "https://sso.example.com/device";
        EndpointsOut o = endpoints_of(provider("oidc"), s, http);
        CPPUNIT_ASSERT(o.ok);
        CPPUNIT_ASSERT(http.requests.empty());
        CPPUNIT_ASSERT_EQUAL(s.token_endpoint, o.e.token);
        CPPUNIT_ASSERT_EQUAL(s.device_endpoint, o.e.device);
        CPPUNIT_ASSERT(o.e.authorization.empty() && o.e.issuer.empty());
        s.device_endpoint = "http://sso.example.com/device";
        o = endpoints_of(provider("oidc"), s, http);
        CPPUNIT_ASSERT(!o.ok);
        CPPUNIT_ASSERT(contains(o.why, "device endpoint"));
    }

    void oidc_needs_issuer_or_endpoint() {
        FakeHttp http;
        ProviderSettings s;
        s.device_endpoint = "https://sso.example.com/device";
        EndpointsOut o = endpoints_of(provider("oidc"), s, http);
        CPPUNIT_ASSERT(!o.ok);
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(kExitUsage), o.code);
        CPPUNIT_ASSERT(contains(o.why, "--issuer"));
    }

    void device_flow_blocked_names_browser_command() {
        for (long code : {53003L, 530033L}) {
            FakeHttp http;
            http.answer("https://login.example/dc", 200,
                        "{\"device_code\":\"DC\",\"user_code\":\"ABC\",\"verification_uri\":\"https://microsoft.com/devicelogin\","
                        "\"expires_in\":900,\"interval\":5}");
            http.answer("https://login.example/tok", 400,
                        "{\"error\":\"invalid_grant\",\"error_description\":\"AADSTS" + std::to_string(code) +
                            ": blocked\",\"error_codes\":[" + std::to_string(code) + "],\"trace_id\":\"t-1\"}");
            DeviceFlowParams p;
            p.device_endpoint = "https://login.example/dc";
            p.token_endpoint = "https://login.example/tok";
            p.client_id = "cid";
            p.scope = "s";
            p.account = "alice@contoso.com";
            p.browser_command = "mailoauth login alice@contoso.com --client-id cid --tenant contoso.com --browser";
            QuietUI ui;
            double t = 0;
            DeviceFlowResult r = run_device_flow(http, p, ui, fake_clock(&t));
            CPPUNIT_ASSERT_EQUAL(static_cast<int>(kExitConfig), r.exit_code);
            CPPUNIT_ASSERT_EQUAL(std::string("device_code_blocked"), r.error);
            CPPUNIT_ASSERT(contains(r.message, "blocks sign-in with a device code"));
            CPPUNIT_ASSERT(contains(r.message, p.browser_command));
            CPPUNIT_ASSERT(contains(r.message, "AADSTS" + std::to_string(code)));
            CPPUNIT_ASSERT(t < 60);  // one poll, no real waiting
        }
        // Another provider's invalid_grant is not read as Conditional Access.
        FakeHttp http;
        http.answer("https://o/dc", 200, "{\"device_code\":\"DC\",\"user_code\":\"ABC\",\"verification_uri\":\"https://o/d\",\"expires_in\":900}");
        http.answer("https://o/tok", 400, "{\"error\":\"invalid_grant\",\"error_codes\":[53003]}");
        DeviceFlowParams p;
        p.device_endpoint = "https://o/dc";
        p.token_endpoint = "https://o/tok";
        p.provider = find_provider("oidc");
        p.account = "x";
        QuietUI ui;
        double t = 0;
        DeviceFlowResult r = run_device_flow(http, p, ui, fake_clock(&t));
        CPPUNIT_ASSERT(r.error != "device_code_blocked");
    }

    void device_flow_uses_endpoints_and_client_secret() {
        FakeHttp http;
        http.answer("https://sso/dev", 200,
                    "{\"device_code\":\"DC\",\"user_code\":\"ABC\",\"verification_uri\":\"https://sso/d\",\"expires_in\":900,\"interval\":1}");
        http.answer("https://sso/tok", 400, "{\"error\":\"authorization_pending\"}");
        http.answer("https://sso/tok", 200,
                    "{\"access_token\":\"AT\",\"refresh_token\":\"RT\",\"token_type\":\"Bearer\",\"expires_in\":300}");
        DeviceFlowParams p;
        p.device_endpoint = "https://sso/dev";
        p.token_endpoint = "https://sso/tok";
        p.provider = find_provider("oidc");
        p.client_id = "mail";
        p.client_secret = Secret("s3cr3t");
        p.scope = "openid offline_access";
        p.account = "x";
        QuietUI ui;
        double t = 0;
        DeviceFlowResult r = run_device_flow(http, p, ui, fake_clock(&t));
        CPPUNIT_ASSERT_EQUAL(0, r.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::string("RT"), r.tokens.refresh_token.reveal());
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), http.requests.size());
        for (const auto& c : http.requests) {
            CPPUNIT_ASSERT_EQUAL(std::string("POST"), c.method);
            CPPUNIT_ASSERT(contains(c.body, "client_id=mail"));
            CPPUNIT_ASSERT(contains(c.body, "client_secret=s3cr3t"));
        }
        CPPUNIT_ASSERT_EQUAL(std::string("https://sso/dev"), http.requests[0].url);
        CPPUNIT_ASSERT_EQUAL(std::string("https://sso/tok"), http.requests[2].url);
    }

    void refresh_uses_stored_endpoint_and_secret() {
        AccountRecord rec;
        rec.account = "bob@gmail.com";
        rec.provider = "google";
        rec.token_endpoint = "https://127.0.0.1:9/google/token";
        rec.client_id = "1.apps";
        rec.client_secret = Secret("gsecret");
        rec.refresh_token = Secret("1//keep-me");
        rec.refresh_obtained_at = 100;
        rec.scope = "https://mail.google.com/";
        FakeHttp http;
        // Google answers a refresh without a new refresh token.
        http.answer(rec.token_endpoint, 200, "{\"access_token\":\"ya29.x\",\"expires_in\":3599,\"token_type\":\"Bearer\"}");
        Environment env;
        TokenResult t = refresh_once(env, http, rec, 1000);
        CPPUNIT_ASSERT_EQUAL(0, t.exit_code);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), http.requests.size());
        CPPUNIT_ASSERT_EQUAL(rec.token_endpoint, http.requests[0].url);
        CPPUNIT_ASSERT(contains(http.requests[0].body, "client_secret=gsecret"));
        CPPUNIT_ASSERT(contains(http.requests[0].body, "grant_type=refresh_token"));
        CPPUNIT_ASSERT_EQUAL(std::string("1//keep-me"), t.record.refresh_token.reveal());
        CPPUNIT_ASSERT_EQUAL(std::int64_t(100), t.record.refresh_obtained_at);
        CPPUNIT_ASSERT_EQUAL(std::string("ya29.x"), t.record.access_token.reveal());
        // Google's own words for a dead refresh token.
        http.answer(rec.token_endpoint, 400, "{\"error\":\"invalid_grant\",\"error_description\":\"Token has been expired or revoked.\"}");
        t = refresh_once(env, http, rec, 1000);
        CPPUNIT_ASSERT_EQUAL(static_cast<int>(kExitNoPerm), t.exit_code);
        CPPUNIT_ASSERT(contains(t.message, "Testing"));
        // A public client sends no client_secret.
        rec.client_secret.clear();
        http.answer(rec.token_endpoint, 200, "{\"access_token\":\"a\",\"expires_in\":60}");
        refresh_once(env, http, rec, 1000);
        CPPUNIT_ASSERT(!contains(http.requests.back().body, "client_secret"));
    }

    void refresh_lifetimes() {
        CPPUNIT_ASSERT_EQUAL(std::int64_t(90 * 86400), provider("microsoft").refresh_lifetime.seconds);
        CPPUNIT_ASSERT(provider("microsoft").refresh_lifetime.sliding);
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), provider("google").refresh_lifetime.seconds);
        CPPUNIT_ASSERT(contains(provider("google").refresh_lifetime.note, "7 days"));
        CPPUNIT_ASSERT_EQUAL(std::int64_t(0), provider("oidc").refresh_lifetime.seconds);
    }
};

}  // namespace

CPPUNIT_TEST_SUITE_REGISTRATION(ProvidersTest);
