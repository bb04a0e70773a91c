// The plugin's C boundary and mechanism state machine, called the way
// libsasl2 calls them (sasl_client_plug_init, then the plug table's
// mech_new / mech_step / mech_dispose), with a fake sasl_utils_t and a fake
// token source: no libsasl2, no helper process.  Checks what the
// application sees (SASL codes, bytes, prompts, sasl_errdetail, log lines)
// and that no exception or token gets out.
#include "plugin/agent_source.h"
#include "plugin/mechanism.h"
#include "tests/plugin/fake_sasl_utils.h"

#include <cppunit/extensions/HelperMacros.h>

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" int sasl_client_plug_init(const sasl_utils_t* utils, int maxversion, int* out_version,
                                     sasl_client_plug_t** pluglist, int* plugcount);

namespace {

using mailoauth::Secret;
using mailoauth::plugin::plugin_state;
using mailoauth::plugin::steps_only_after_continue;
using mailoauth::plugin::TokenReply;
using mailoauth::plugin::TokenRequest;
using mailoauth::plugin::TokenSource;
using mailoauth::plugin::TokenStatus;
using mailoauth::test::FakeSaslUtils;

const char kToken1[] = "tok-one-0123456789abcdefghijklmnopqrstuvwxyz";
const char kToken2[] = "tok-two-9876543210zyxwvutsrqponmlkjihgfedcba";

// Answers from a script; records every request.
class FakeSource : public TokenSource {
public:
    enum class Throw { None, BadAlloc, Other };
    struct Answer {
        TokenStatus status = TokenStatus::Ok;
        std::string token;
        long long lifetime = 3600;
        bool says_lifetime = false;  // sends the reply key "lifetime"
        std::string user;
        std::string message;
        Throw raise = Throw::None;
    };
    std::deque<Answer> script;
    std::vector<TokenRequest> requests;

    void fetch(const TokenRequest& req, TokenReply& reply) override {
        requests.push_back(req);
        Answer a;
        if (!script.empty()) {
            a = script.front();
            script.pop_front();
        } else {
            a.status = TokenStatus::Failed;
            a.message = "the fake source has no answer left";
        }
        if (a.raise == Throw::BadAlloc) throw std::bad_alloc();
        if (a.raise == Throw::Other) throw std::runtime_error("boom");
        reply.status = a.status;
        reply.token = Secret(a.token);
        reply.expires_at = static_cast<long long>(std::time(nullptr)) + a.lifetime;
        reply.lifetime = a.says_lifetime ? a.lifetime : 0;
        reply.user = a.user;
        reply.message = a.message;
    }
};

FakeSource::Answer ok(const char* token, const std::string& user = "") {
    FakeSource::Answer a;
    a.token = token;
    a.user = user;
    return a;
}

FakeSource::Answer failing(TokenStatus status, const std::string& message) {
    FakeSource::Answer a;
    a.status = status;
    a.message = message;
    return a;
}

FakeSource::Answer raising(FakeSource::Throw what) {
    FakeSource::Answer a;
    a.raise = what;
    return a;
}

struct Exchange {
    int result = SASL_FAIL;
    std::string out;
};

}  // namespace

class MechanismTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(MechanismTest);
    CPPUNIT_TEST(test_init_registers_both_mechanisms);
    CPPUNIT_TEST(test_init_refuses_old_libsasl2);
    CPPUNIT_TEST(test_init_warns_about_other_xoauth2_modules);
    CPPUNIT_TEST(test_xoauth2_initial_response_bytes);
    CPPUNIT_TEST(test_oauthbearer_initial_response_bytes);
    CPPUNIT_TEST(test_oauthbearer_without_host_or_port);
    CPPUNIT_TEST(test_shared_mailbox_user_from_source);
    CPPUNIT_TEST(test_authzid_goes_on_the_wire_and_to_canon_user);
    CPPUNIT_TEST(test_interaction_prompts_then_answers);
    CPPUNIT_TEST(test_interaction_prompt_allocation_failure_is_nomem);
    CPPUNIT_TEST(test_callback_error_is_passed_on);
    CPPUNIT_TEST(test_no_account_is_badparam_with_advice);
    CPPUNIT_TEST(test_server_data_before_first_message_is_badprot);
    CPPUNIT_TEST(test_success_after_empty_challenge);
    CPPUNIT_TEST(test_xoauth2_error_challenge_reply_and_refresh);
    CPPUNIT_TEST(test_oauthbearer_error_challenge_reply);
    CPPUNIT_TEST(test_second_challenge_is_badprot);
    CPPUNIT_TEST(test_mbsync_is_told_to_continue);
    CPPUNIT_TEST(test_continue_after_response_in_mbsync);
    CPPUNIT_TEST(test_cache_serves_second_connection);
    CPPUNIT_TEST(test_source_statuses_map_to_sasl_codes);
    CPPUNIT_TEST(test_bad_alloc_in_source_is_nomem);
    CPPUNIT_TEST(test_other_exception_is_fail);
    CPPUNIT_TEST(test_null_arguments_are_badparam);
    CPPUNIT_TEST(test_broken_config_fails_connection_not_init);
    CPPUNIT_TEST(test_canon_user_failure_is_passed_on);
    CPPUNIT_TEST(test_no_token_in_logs_or_errors);
    CPPUNIT_TEST(test_agent_source_trusts_only_known_uids);
    CPPUNIT_TEST_SUITE_END();

public:
    void setUp() override {
        char tmpl[] = "/tmp/mailoauth-test-mechanism-XXXXXX";
        CPPUNIT_ASSERT(::mkdtemp(tmpl) != nullptr);
        dir_ = tmpl;
        write_config("helper = /bin/true\n");
        ::unsetenv("MAILOAUTH_HELPER");
        utils_ = new FakeSaslUtils();
        init();
    }

    void tearDown() override {
        finish();
        plugin_state().cache.clear();
        plugin_state().source.reset();
        delete utils_;
        utils_ = nullptr;
        ::unlink(conf().c_str());
        ::rmdir(dir_.c_str());
        ::unsetenv("MAILOAUTH_CONFIG");
    }

    void test_init_registers_both_mechanisms() {
        CPPUNIT_ASSERT_EQUAL(SASL_CLIENT_PLUG_VERSION, version_);
        CPPUNIT_ASSERT_EQUAL(2, count_);
        CPPUNIT_ASSERT_EQUAL(std::string("XOAUTH2"), std::string(plugs_[0].mech_name));
        CPPUNIT_ASSERT_EQUAL(std::string("OAUTHBEARER"), std::string(plugs_[1].mech_name));
        for (int i = 0; i < count_; ++i) {
            // Postfix's default smtp_sasl_security_options needs noplaintext.
            CPPUNIT_ASSERT(plugs_[i].security_flags & SASL_SEC_NOPLAINTEXT);
            CPPUNIT_ASSERT(plugs_[i].security_flags & SASL_SEC_NOANONYMOUS);
            CPPUNIT_ASSERT(plugs_[i].features & SASL_FEAT_WANT_CLIENT_FIRST);
            CPPUNIT_ASSERT_EQUAL(static_cast<unsigned long>(SASL_CB_AUTHNAME), plugs_[i].required_prompts[0]);
            CPPUNIT_ASSERT_EQUAL(static_cast<unsigned long>(SASL_CB_LIST_END),
                                 plugs_[i].required_prompts[1]);
        }
        CPPUNIT_ASSERT(utils_->logs.empty());
    }

    void test_init_refuses_old_libsasl2() {
        int v = 0, n = 0;
        sasl_client_plug_t* list = nullptr;
        CPPUNIT_ASSERT_EQUAL(SASL_BADVERS,
                             sasl_client_plug_init(utils_->utils(), SASL_CLIENT_PLUG_VERSION - 1, &v, &list, &n));
        CPPUNIT_ASSERT(utils_->last_error.find("too old") != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(SASL_BADPARAM,
                             sasl_client_plug_init(utils_->utils(), SASL_CLIENT_PLUG_VERSION, nullptr, &list, &n));
    }

    void test_init_warns_about_other_xoauth2_modules() {
        std::ofstream(dir_ + "/libxoauth2.so") << "";
        utils_->set_getpath("/nonexistent:" + dir_);
        init();
        ::unlink((dir_ + "/libxoauth2.so").c_str());
        CPPUNIT_ASSERT(utils_->all_logs().find(dir_ + "/libxoauth2.so also provides XOAUTH2") !=
                       std::string::npos);
        // Said once more through the first connection (the program's own log).
        utils_->logs.clear();
        source_->script.push_back(ok(kToken1));
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        start(0);
        CPPUNIT_ASSERT(utils_->all_logs().find("libxoauth2.so also provides") != std::string::npos);
    }

    void test_xoauth2_initial_response_bytes() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        Exchange e = start(0);
        // SASL_OK: the initial response is the client's last word when the
        // server accepts (nmh waits for no challenge after SASL_OK); the
        // doneflag stays 0 so that an error challenge can still be answered.
        CPPUNIT_ASSERT_EQUAL(SASL_OK, e.result);
        CPPUNIT_ASSERT_EQUAL(0u, oparams_.doneflag);
        CPPUNIT_ASSERT_EQUAL(std::string("user=alice@example.com\x01" "auth=Bearer ") + kToken1 + "\x01\x01",
                             e.out);
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), source_->requests.size());
        const TokenRequest& r = source_->requests[0];
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), r.account);
        CPPUNIT_ASSERT_EQUAL(std::string("imap"), r.protocol);
        CPPUNIT_ASSERT_EQUAL(std::string("mail.example.com"), r.host);
        CPPUNIT_ASSERT_EQUAL(std::string("993"), r.port);
        CPPUNIT_ASSERT_EQUAL(std::string("XOAUTH2"), r.mechanism);
        CPPUNIT_ASSERT(!r.force_refresh);
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), utils_->canon_authid);
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), utils_->canon_authzid);
        finish();
    }

    void test_oauthbearer_initial_response_bytes() {
        utils_->set_simple(SASL_CB_AUTHNAME, "a,b=c@example.com");
        source_->script.push_back(ok(kToken1));
        Exchange e = start(1, "smtp", "smtp.office365.com", "203.0.113.5;587");
        CPPUNIT_ASSERT_EQUAL(SASL_OK, e.result);
        CPPUNIT_ASSERT_EQUAL(0u, oparams_.doneflag);
        // GS2: ',' as =2C and '=' as =3D.
        CPPUNIT_ASSERT_EQUAL(std::string("n,a=a=2Cb=3Dc@example.com,\x01" "host=smtp.office365.com\x01"
                                         "port=587\x01" "auth=Bearer ") +
                                 kToken1 + "\x01\x01",
                             e.out);
        CPPUNIT_ASSERT_EQUAL(std::string("OAUTHBEARER"), source_->requests[0].mechanism);
        CPPUNIT_ASSERT_EQUAL(std::string("smtp"), source_->requests[0].protocol);
        finish();
    }

    void test_oauthbearer_without_host_or_port() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        Exchange e = start(1, "imap", "", "");
        CPPUNIT_ASSERT_EQUAL(std::string("n,a=alice@example.com,\x01" "auth=Bearer ") + kToken1 + "\x01\x01",
                             e.out);
        finish();
    }

    void test_shared_mailbox_user_from_source() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1, "shared@example.com"));
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(std::string("user=shared@example.com\x01" "auth=Bearer ") + kToken1 + "\x01\x01",
                             e.out);
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), source_->requests[0].account);
        finish();
    }

    void test_authzid_goes_on_the_wire_and_to_canon_user() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        utils_->set_simple(SASL_CB_USER, "team@example.com");
        source_->script.push_back(ok(kToken1));
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(std::string("user=team@example.com\x01" "auth=Bearer ") + kToken1 + "\x01\x01",
                             e.out);
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), utils_->canon_authid);
        CPPUNIT_ASSERT_EQUAL(std::string("team@example.com"), utils_->canon_authzid);
        CPPUNIT_ASSERT_EQUAL(std::string("alice@example.com"), source_->requests[0].account);
        finish();
    }

    void test_interaction_prompts_then_answers() {
        // mbsync registers the ids without procedures: the plugin must ask.
        utils_->set_interact(SASL_CB_USER);
        utils_->set_interact(SASL_CB_AUTHNAME);
        source_->script.push_back(ok(kToken1));
        sasl_client_params_t* params = utils_->params();
        void* conn = new_conn(0, params);
        sasl_interact_t* prompts = nullptr;
        const char* out = nullptr;
        unsigned outlen = 0;
        sasl_out_params_t oparams{};
        int r = plugs_[0].mech_step(conn, params, nullptr, 0, &prompts, &out, &outlen, &oparams);
        CPPUNIT_ASSERT_EQUAL(SASL_INTERACT, r);
        CPPUNIT_ASSERT(prompts != nullptr);
        CPPUNIT_ASSERT(source_->requests.empty());  // nothing asked before we know who
        std::vector<unsigned long> ids;
        for (sasl_interact_t* p = prompts; p->id != SASL_CB_LIST_END; ++p) {
            ids.push_back(p->id);
            CPPUNIT_ASSERT(p->prompt != nullptr && *p->prompt != '\0');
            CPPUNIT_ASSERT(p->challenge != nullptr);
            if (p->id == SASL_CB_AUTHNAME) {
                p->result = "alice@example.com";
                p->len = 17;
            } else {
                p->result = "";
                p->len = 0;
            }
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), ids.size());
        CPPUNIT_ASSERT_EQUAL(static_cast<unsigned long>(SASL_CB_USER), ids[0]);
        CPPUNIT_ASSERT_EQUAL(static_cast<unsigned long>(SASL_CB_AUTHNAME), ids[1]);
        r = plugs_[0].mech_step(conn, params, nullptr, 0, &prompts, &out, &outlen, &oparams);
        CPPUNIT_ASSERT_EQUAL(SASL_OK, r);
        CPPUNIT_ASSERT_EQUAL(0u, oparams.doneflag);
        CPPUNIT_ASSERT(prompts == nullptr);  // the answered list was freed
        CPPUNIT_ASSERT_EQUAL(std::string("user=alice@example.com\x01" "auth=Bearer ") + kToken1 + "\x01\x01",
                             std::string(out, outlen));
        plugs_[0].mech_dispose(conn, utils_->utils());
        CPPUNIT_ASSERT_EQUAL(0L, utils_->live_allocations());
    }

    void test_interaction_prompt_allocation_failure_is_nomem() {
        utils_->set_interact(SASL_CB_AUTHNAME);
        utils_->fail_malloc_after(0);
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(SASL_NOMEM, e.result);
        CPPUNIT_ASSERT(source_->requests.empty());
        CPPUNIT_ASSERT_EQUAL(0L, utils_->live_allocations());
    }

    void test_callback_error_is_passed_on() {
        utils_->set_callback_error(SASL_CB_AUTHNAME, SASL_BADPARAM);
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(SASL_BADPARAM, e.result);
        CPPUNIT_ASSERT(utils_->last_error.find("SASL_CB_AUTHNAME callback failed") != std::string::npos);
        CPPUNIT_ASSERT(source_->requests.empty());
    }

    void test_no_account_is_badparam_with_advice() {
        utils_->set_simple(SASL_CB_AUTHNAME, "");
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(SASL_BADPARAM, e.result);
        CPPUNIT_ASSERT(utils_->last_error.find("must be the mailoauth account") != std::string::npos);
        CPPUNIT_ASSERT(utils_->last_error.find("smtp_sasl_password_maps") != std::string::npos);
    }

    void test_server_data_before_first_message_is_badprot() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        sasl_client_params_t* params = utils_->params();
        void* conn = new_conn(0, params);
        const char* out = nullptr;
        unsigned outlen = 0;
        sasl_out_params_t oparams{};
        CPPUNIT_ASSERT_EQUAL(SASL_BADPROT,
                             plugs_[0].mech_step(conn, params, "x", 1, nullptr, &out, &outlen, &oparams));
        CPPUNIT_ASSERT(utils_->last_error.find("before the client's first message") != std::string::npos);
        plugs_[0].mech_dispose(conn, utils_->utils());
    }

    void test_success_after_empty_challenge() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        start(0);
        Exchange e = step("");
        CPPUNIT_ASSERT_EQUAL(SASL_OK, e.result);
        CPPUNIT_ASSERT(e.out.empty());
        CPPUNIT_ASSERT_EQUAL(1u, oparams_.doneflag);
        finish();
    }

    void test_xoauth2_error_challenge_reply_and_refresh() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        source_->script.push_back(ok(kToken2));
        start(0);
        Exchange e = step(R"({"status":"401","schemes":"bearer","scope":"https://outlook.office.com/IMAP.AccessAsUser.All"})");
        // XOAUTH2 answers the error challenge with an empty response, and
        // waits for the server's verdict (SASL_CONTINUE, not done).
        CPPUNIT_ASSERT_EQUAL(SASL_CONTINUE, e.result);
        CPPUNIT_ASSERT_EQUAL(std::string(), e.out);
        CPPUNIT_ASSERT_EQUAL(0u, oparams_.doneflag);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), source_->requests.size());
        const TokenRequest& again = source_->requests[1];
        CPPUNIT_ASSERT(again.force_refresh);
        // Named by a hash, never by characters of the token.
        CPPUNIT_ASSERT_EQUAL(mailoauth::protocol::token_id(kToken1), again.rejected);
        CPPUNIT_ASSERT_EQUAL(std::size_t(16), again.rejected.size());
        CPPUNIT_ASSERT(std::string(kToken1).find(again.rejected) == std::string::npos);
        const std::string logs = utils_->all_logs();
        CPPUNIT_ASSERT(logs.find("status 401") != std::string::npos);
        CPPUNIT_ASSERT(logs.find("scope https://outlook.office.com/IMAP.AccessAsUser.All") != std::string::npos);
        finish();
        // The next connection gets the new token without asking again.
        Exchange next = start(0);
        CPPUNIT_ASSERT_EQUAL(std::string("user=alice@example.com\x01" "auth=Bearer ") + kToken2 + "\x01\x01",
                             next.out);
        CPPUNIT_ASSERT_EQUAL(std::size_t(2), source_->requests.size());
        finish();
    }

    void test_oauthbearer_error_challenge_reply() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        // The new token cannot be had yet: the reply is still ^A, and the
        // next connection asks again with force_refresh=1.
        source_->script.push_back(failing(TokenStatus::TryAgain, "the identity provider is busy"));
        source_->script.push_back(ok(kToken2));
        start(1);
        Exchange e = step(R"({"status":"invalid_token","scope":"x"})");
        CPPUNIT_ASSERT_EQUAL(SASL_CONTINUE, e.result);
        CPPUNIT_ASSERT_EQUAL(std::string("\x01"), e.out);
        CPPUNIT_ASSERT(utils_->all_logs().find("no new token yet: the identity provider is busy") !=
                       std::string::npos);
        finish();
        Exchange next = start(1);
        CPPUNIT_ASSERT_EQUAL(SASL_OK, next.result);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), source_->requests.size());
        CPPUNIT_ASSERT(source_->requests[2].force_refresh);
        CPPUNIT_ASSERT(next.out.find(kToken2) != std::string::npos);
        finish();
    }

    void test_second_challenge_is_badprot() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        source_->script.push_back(ok(kToken2));
        start(0);
        step("not json at all");
        CPPUNIT_ASSERT(utils_->all_logs().find("a challenge that is not JSON") != std::string::npos);
        Exchange e = step("{}");
        CPPUNIT_ASSERT_EQUAL(SASL_BADPROT, e.result);
        CPPUNIT_ASSERT(utils_->last_error.find("another challenge") != std::string::npos);
        finish();
    }

    // mbsync passes no challenge on after SASL_OK (mechanism.h); nothing
    // else is singled out.
    void test_mbsync_is_told_to_continue() {
        CPPUNIT_ASSERT(steps_only_after_continue("mbsync"));
        CPPUNIT_ASSERT(steps_only_after_continue("/usr/bin/mbsync"));
        for (const char* other : {"post", "inc", "imtest", "smtp", "sendmail", "mbsync-get-cert", "", "/"})
            CPPUNIT_ASSERT(!steps_only_after_continue(other));
        CPPUNIT_ASSERT(!plugin_state().continue_after_response);  // this program is test_mechanism
    }

    void test_continue_after_response_in_mbsync() {
        plugin_state().continue_after_response = true;
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        source_->script.push_back(ok(kToken2));
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(SASL_CONTINUE, e.result);
        CPPUNIT_ASSERT(e.out.find(kToken1) != std::string::npos);
        Exchange done = step("");  // mbsync's last step after the server's OK
        CPPUNIT_ASSERT_EQUAL(SASL_OK, done.result);
        CPPUNIT_ASSERT_EQUAL(1u, oparams_.doneflag);
        start(0);
        Exchange refused = step(R"({"status":"401"})");
        CPPUNIT_ASSERT_EQUAL(SASL_CONTINUE, refused.result);
        CPPUNIT_ASSERT_EQUAL(std::string(), refused.out);
        CPPUNIT_ASSERT(source_->requests.back().force_refresh);
        finish();
        plugin_state().continue_after_response = false;
    }

    void test_cache_serves_second_connection() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        for (int i = 0; i < 3; ++i) {
            Exchange e = start(i % 2);
            CPPUNIT_ASSERT_EQUAL(SASL_OK, e.result);
            CPPUNIT_ASSERT(e.out.find(kToken1) != std::string::npos);
            finish();
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(1), source_->requests.size());
        // A token inside the refresh margin (600 s) is not kept.
        plugin_state().cache.clear();
        FakeSource::Answer shortlived = ok(kToken1);
        shortlived.lifetime = 300;
        source_->script.push_back(shortlived);
        source_->script.push_back(ok(kToken2));
        start(0);
        finish();
        Exchange e = start(0);
        CPPUNIT_ASSERT(e.out.find(kToken2) != std::string::npos);
        CPPUNIT_ASSERT_EQUAL(std::size_t(3), source_->requests.size());
        finish();
        // The same 300 s token, when the source says it was issued for
        // 300 s: the margin is clamped to 100 s and the token is reused.
        plugin_state().cache.clear();
        shortlived.says_lifetime = true;
        source_->script.push_back(shortlived);
        for (int i = 0; i < 3; ++i) {
            e = start(0);
            CPPUNIT_ASSERT(e.out.find(kToken1) != std::string::npos);
            finish();
        }
        CPPUNIT_ASSERT_EQUAL(std::size_t(4), source_->requests.size());
    }

    void test_source_statuses_map_to_sasl_codes() {
        struct Case {
            TokenStatus status;
            int sasl;
            const char* says;
        } cases[] = {
            {TokenStatus::TryAgain, SASL_TRYAGAIN, "try again later"},
            {TokenStatus::Relogin, SASL_FAIL, "Run 'mailoauth login alice@example.com'"},
            {TokenStatus::Config, SASL_FAIL, "mailoauth login alice@example.com"},
            {TokenStatus::Failed, SASL_FAIL, "no token for account alice@example.com"},
        };
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        for (const Case& c : cases) {
            source_->script.push_back(failing(c.status, "the reason"));
            utils_->last_error.clear();
            Exchange e = start(0);
            CPPUNIT_ASSERT_EQUAL(c.sasl, e.result);
            CPPUNIT_ASSERT(e.out.empty());
            CPPUNIT_ASSERT_MESSAGE(utils_->last_error, utils_->last_error.find(c.says) != std::string::npos);
            CPPUNIT_ASSERT(utils_->last_error.find("the reason") != std::string::npos);
            CPPUNIT_ASSERT_EQUAL(std::size_t(0), utils_->last_error.find("mailoauth: "));
            finish();
        }
    }

    void test_bad_alloc_in_source_is_nomem() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(raising(FakeSource::Throw::BadAlloc));
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(SASL_NOMEM, e.result);
        CPPUNIT_ASSERT_EQUAL(std::string("mailoauth: out of memory"), utils_->last_error);
        finish();
    }

    void test_other_exception_is_fail() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        source_->script.push_back(raising(FakeSource::Throw::Other));
        start(0);
        // In the error-challenge path too: nothing escapes into C.
        Exchange e = step(R"({"status":"401"})");
        CPPUNIT_ASSERT_EQUAL(SASL_FAIL, e.result);
        CPPUNIT_ASSERT_EQUAL(std::string("mailoauth: internal error"), utils_->last_error);
        finish();
    }

    void test_null_arguments_are_badparam() {
        void* conn = nullptr;
        CPPUNIT_ASSERT_EQUAL(SASL_BADPARAM, plugs_[0].mech_new(nullptr, nullptr, &conn));
        sasl_client_params_t* params = utils_->params();
        CPPUNIT_ASSERT_EQUAL(SASL_BADPARAM, plugs_[0].mech_new(nullptr, params, nullptr));
        conn = new_conn(0, params);
        const char* out = nullptr;
        unsigned outlen = 0;
        sasl_out_params_t oparams{};
        CPPUNIT_ASSERT_EQUAL(SASL_BADPARAM,
                             plugs_[0].mech_step(nullptr, params, nullptr, 0, nullptr, &out, &outlen, &oparams));
        CPPUNIT_ASSERT_EQUAL(SASL_BADPARAM,
                             plugs_[0].mech_step(conn, params, nullptr, 0, nullptr, nullptr, &outlen, &oparams));
        CPPUNIT_ASSERT_EQUAL(SASL_BADPARAM,
                             plugs_[0].mech_step(conn, params, nullptr, 0, nullptr, &out, &outlen, nullptr));
        plugs_[0].mech_dispose(conn, utils_->utils());
        plugs_[0].mech_dispose(nullptr, utils_->utils());
    }

    void test_broken_config_fails_connection_not_init() {
        write_config("helper = /bin/true\ntimeout = soon\n");
        init();
        CPPUNIT_ASSERT_EQUAL(2, count_);  // still registered
        CPPUNIT_ASSERT(utils_->all_logs().find("will fail until this is fixed") != std::string::npos);
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(SASL_FAIL, e.result);
        CPPUNIT_ASSERT_MESSAGE(utils_->last_error,
                               utils_->last_error.find(conf() + ":3:") != std::string::npos);
        CPPUNIT_ASSERT(source_->requests.empty());
        finish();
    }

    void test_canon_user_failure_is_passed_on() {
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        utils_->canon_result = SASL_BADPROT;
        Exchange e = start(0);
        CPPUNIT_ASSERT_EQUAL(SASL_BADPROT, e.result);
        CPPUNIT_ASSERT(source_->requests.empty());
        finish();
    }

    void test_no_token_in_logs_or_errors() {
        write_config("helper = /bin/true\nlog_level = trace\n");
        init();
        utils_->set_simple(SASL_CB_AUTHNAME, "alice@example.com");
        source_->script.push_back(ok(kToken1));
        source_->script.push_back(ok(kToken2));
        start(0);
        step(R"({"status":"401"})");
        finish();
        start(1);
        step("");
        finish();
        const std::string all = utils_->all_logs() + utils_->last_error;
        CPPUNIT_ASSERT(utils_->logs.size() >= 3);  // trace shows the per-connection lines
        for (const char* t : {kToken1, kToken2}) {
            const std::string s(t);
            CPPUNIT_ASSERT(all.find(s) == std::string::npos);
            CPPUNIT_ASSERT(all.find(s.substr(0, 12)) == std::string::npos);
            CPPUNIT_ASSERT(all.find(s.substr(s.size() - 16)) == std::string::npos);
        }
        // The fingerprint (last four characters) tells them apart.
        CPPUNIT_ASSERT(all.find(std::string(kToken1).substr(std::strlen(kToken1) - 4)) != std::string::npos);
    }

private:
    std::string conf() const { return dir_ + "/mailoauth.conf"; }

    void write_config(const std::string& text) {
        std::ofstream(conf()) << "# test_mechanism\n" << text;
        ::setenv("MAILOAUTH_CONFIG", conf().c_str(), 1);
    }

    // What libsasl2 does once per program: plug init, then (for the test)
    // the helper replaced by the fake source.
    void init() {
        plugs_ = nullptr;
        count_ = 0;
        version_ = 0;
        CPPUNIT_ASSERT_EQUAL(SASL_OK, sasl_client_plug_init(utils_->utils(), SASL_CLIENT_PLUG_VERSION,
                                                            &version_, &plugs_, &count_));
        source_ = new FakeSource();
        plugin_state().source.reset(source_);
    }

    void* new_conn(int mech, sasl_client_params_t* params) {
        void* conn = nullptr;
        CPPUNIT_ASSERT_EQUAL(SASL_OK, plugs_[mech].mech_new(plugs_[mech].glob_context, params, &conn));
        CPPUNIT_ASSERT(conn != nullptr);
        return conn;
    }

    // A new connection and its first step (mech 0: XOAUTH2, 1: OAUTHBEARER).
    Exchange start(int mech, const std::string& service = "imap", const std::string& fqdn = "mail.example.com",
                   const std::string& remote = "192.0.2.7;993") {
        finish();
        mech_ = mech;
        params_ = utils_->params(service, fqdn, remote);
        conn_ = new_conn(mech, params_);
        oparams_ = sasl_out_params_t{};
        return step_raw(nullptr, 0);
    }

    Exchange step(const std::string& challenge) { return step_raw(challenge.data(), challenge.size()); }

    Exchange step_raw(const char* in, std::size_t len) {
        Exchange e;
        const char* out = nullptr;
        unsigned outlen = 0;
        e.result = plugs_[mech_].mech_step(conn_, params_, in, static_cast<unsigned>(len), nullptr, &out,
                                           &outlen, &oparams_);
        if (out) e.out.assign(out, outlen);
        return e;
    }

    void finish() {
        if (conn_) plugs_[mech_].mech_dispose(conn_, utils_->utils());
        conn_ = nullptr;
    }

    std::string dir_;
    FakeSaslUtils* utils_ = nullptr;
    FakeSource* source_ = nullptr;  // owned by plugin_state()
    sasl_client_plug_t* plugs_ = nullptr;
    int count_ = 0;
    int version_ = 0;
    int mech_ = 0;
    void* conn_ = nullptr;
    sasl_client_params_t* params_ = nullptr;
    sasl_out_params_t oparams_{};

    // Root, agent_user, the user "mailoauth" when it exists, our own euid:
    // nothing else, and never "anyone" (tests/plugin/test_agent_trust.py
    // shows it against real listeners).
    void test_agent_source_trusts_only_known_uids() {
        using mailoauth::plugin::AgentSource;
        std::vector<uid_t> want = {0};
        auto add = [&](uid_t u) {
            if (std::find(want.begin(), want.end(), u) == want.end()) want.push_back(u);
        };
        if (const struct passwd* pw = getpwnam("mailoauth")) add(pw->pw_uid);
        AgentSource plain("@mailoauth-agent", "", 5, "mailoauth.conf");
        CPPUNIT_ASSERT_EQUAL(std::string(), plain.setup_error());
        CPPUNIT_ASSERT(plain.trusted(geteuid()));
        CPPUNIT_ASSERT(plain.trusted(0));
        const uid_t stranger = 65532;
        if (stranger != geteuid() && std::find(want.begin(), want.end(), stranger) == want.end())
            CPPUNIT_ASSERT(!plain.trusted(stranger));
        std::vector<uid_t> got = plain.trusted_uids();
        std::sort(got.begin(), got.end());
        std::sort(want.begin(), want.end());
        CPPUNIT_ASSERT(got == want);

        AgentSource named("@mailoauth-agent", "54321", 5, "mailoauth.conf");
        got = named.trusted_uids();
        CPPUNIT_ASSERT_EQUAL(want.size() + 1, got.size());
        CPPUNIT_ASSERT(std::find(got.begin(), got.end(), uid_t(54321)) != got.end());
        CPPUNIT_ASSERT(named.trusted(54321));

        AgentSource unknown("@mailoauth-agent", "no-such-user-for-mailoauth", 5, "mailoauth.conf");
        CPPUNIT_ASSERT(unknown.setup_error().find("is not a user on this system") != std::string::npos);
        AgentSource badname("mailoauth-agent", "", 5, "mailoauth.conf");
        CPPUNIT_ASSERT(badname.setup_error().find("mailoauth.conf: agent_socket: socket 'mailoauth-agent' must be @NAME") !=
                       std::string::npos);
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(MechanismTest);
