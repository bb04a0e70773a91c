// The lines `mailoauth connect` reads and writes before the hand-over
// (tokenhelper/connect_proto.cc): table-driven.
#include <cppunit/extensions/HelperMacros.h>

#include <string>
#include <vector>

#include "tokenhelper/connect_proto.h"

using namespace mailoauth::connect;
using Caps = std::vector<std::string>;

class ConnectProtoTest : public CppUnit::TestFixture {
    CPPUNIT_TEST_SUITE(ConnectProtoTest);
    CPPUNIT_TEST(take_line_table);
    CPPUNIT_TEST(imap_response_table);
    CPPUNIT_TEST(client_capabilities_drop_login_items);
    CPPUNIT_TEST(preauth_and_bye_lines);
    CPPUNIT_TEST(imap_temporary_codes);
    CPPUNIT_TEST(pop3_status_table);
    CPPUNIT_TEST(pop3_capa);
    CPPUNIT_TEST(pop3_front_table);
    CPPUNIT_TEST(base64_round_trip_and_strictness);
    CPPUNIT_TEST(error_challenge_described);
    CPPUNIT_TEST(peer_text_and_one_line);
    CPPUNIT_TEST_SUITE_END();

public:
    void take_line_table() {
        struct Case {
            std::string buf;
            std::size_t max;
            LineStatus st;
            std::string line, rest;
        } cases[] = {
            {"", 10, LineStatus::Incomplete, "", ""},
            {"abc", 10, LineStatus::Incomplete, "", "abc"},
            {"abc\r\nrest", 10, LineStatus::Line, "abc", "rest"},
            {"abc\nrest", 10, LineStatus::Line, "abc", "rest"},
            {"\r\n", 10, LineStatus::Line, "", ""},
            {"a\rb\r\n", 10, LineStatus::Line, "a\rb", ""},
            {"0123456789", 10, LineStatus::TooLong, "", "0123456789"},
            {"0123456789\n", 10, LineStatus::TooLong, "", "0123456789\n"},
            {"012345678\n", 10, LineStatus::Line, "012345678", ""},
        };
        for (const auto& c : cases) {
            std::string buf = c.buf, line = "junk";
            CPPUNIT_ASSERT_MESSAGE(c.buf, take_line(buf, line, c.max) == c.st);
            CPPUNIT_ASSERT_EQUAL(c.line, line);
            CPPUNIT_ASSERT_EQUAL(c.rest, buf);
        }
    }

    void imap_response_table() {
        struct Case {
            std::string line;
            ImapResponse::Kind kind;
            std::string tag, status, code, text;
            Caps caps;
        } cases[] = {
            {"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] Dovecot ready.", ImapResponse::Untagged, "", "OK",
             "CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2", "Dovecot ready.", {"IMAP4rev1", "SASL-IR", "AUTH=XOAUTH2"}},
            {"* OK The Microsoft Exchange IMAP4 service is ready.", ImapResponse::Untagged, "", "OK", "",
             "The Microsoft Exchange IMAP4 service is ready.", {}},
            {"* ok lower case", ImapResponse::Untagged, "", "OK", "", "lower case", {}},
            {"* PREAUTH welcome", ImapResponse::Untagged, "", "PREAUTH", "", "welcome", {}},
            {"* BYE [UNAVAILABLE] too busy", ImapResponse::Untagged, "", "BYE", "UNAVAILABLE", "too busy", {}},
            {"* CAPABILITY IMAP4rev1  IDLE ", ImapResponse::Untagged, "", "CAPABILITY", "", "IMAP4rev1  IDLE ",
             {"IMAP4rev1", "IDLE"}},
            {"* 3 EXISTS", ImapResponse::Untagged, "", "3", "", "EXISTS", {}},
            {"M2 OK [CAPABILITY IMAP4rev1 IDLE] Logged in", ImapResponse::Tagged, "M2", "OK",
             "CAPABILITY IMAP4rev1 IDLE", "Logged in", {"IMAP4rev1", "IDLE"}},
            {"M2 NO [AUTHENTICATIONFAILED] Authentication failed.", ImapResponse::Tagged, "M2", "NO",
             "AUTHENTICATIONFAILED", "Authentication failed.", {}},
            {"M2 NO AUTHENTICATE failed.", ImapResponse::Tagged, "M2", "NO", "", "AUTHENTICATE failed.", {}},
            {"M2 BAD", ImapResponse::Tagged, "M2", "BAD", "", "", {}},
            {"M2 OK [unclosed code", ImapResponse::Tagged, "M2", "OK", "", "[unclosed code", {}},
            {"+ eyJzdGF0dXMiOiI0MDEifQ==", ImapResponse::Continuation, "", "", "", "eyJzdGF0dXMiOiI0MDEifQ==", {}},
            {"+ ", ImapResponse::Continuation, "", "", "", "", {}},
            {"+", ImapResponse::Continuation, "", "", "", "", {}},
            {"+x", ImapResponse::Invalid, "", "", "", "", {}},
            {"", ImapResponse::Invalid, "", "", "", "", {}},
            {"*", ImapResponse::Invalid, "", "", "", "", {}},
            {"M2", ImapResponse::Invalid, "", "", "", "", {}},
            {"M2 FETCH", ImapResponse::Invalid, "M2", "FETCH", "", "", {}},
            {"a{b OK x", ImapResponse::Invalid, "", "", "", "", {}},
            {std::string("M\x01 OK x"), ImapResponse::Invalid, "", "", "", "", {}},
        };
        for (const auto& c : cases) {
            ImapResponse r = parse_imap_response(c.line);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, static_cast<int>(c.kind), static_cast<int>(r.kind));
            if (c.kind == ImapResponse::Invalid) continue;
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, c.tag, r.tag);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, c.status, r.status);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, c.code, r.code);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, c.text, r.text);
            CPPUNIT_ASSERT_MESSAGE(c.line, c.caps == r.capabilities);
        }
    }

    void client_capabilities_drop_login_items() {
        Caps server = {"IMAP4rev1", "STARTTLS", "starttls", "LOGINDISABLED", "AUTH=PLAIN", "auth=xoauth2",
                       "SASL-IR", "IDLE", "AUTHX", "UIDPLUS"};
        Caps want = {"IMAP4rev1", "SASL-IR", "IDLE", "AUTHX", "UIDPLUS"};
        CPPUNIT_ASSERT(client_capabilities(server) == want);
        CPPUNIT_ASSERT(has_capability(server, "auth=plain"));
        CPPUNIT_ASSERT(has_capability(server, "SASL-IR"));
        CPPUNIT_ASSERT(!has_capability(server, "SASL"));
        CPPUNIT_ASSERT(client_capabilities({}).empty());
    }

    void preauth_and_bye_lines() {
        CPPUNIT_ASSERT_EQUAL(std::string("* PREAUTH [CAPABILITY IMAP4rev1 IDLE] Logged in\r\n"),
                             imap_preauth_line({"IMAP4rev1", "IDLE"}, "Logged in"));
        CPPUNIT_ASSERT_EQUAL(std::string("* PREAUTH Logged in\r\n"), imap_preauth_line({}, "Logged in"));
        CPPUNIT_ASSERT_EQUAL(std::string("* BYE a b c\r\n"), imap_bye_line("a\r\nb\n\nc"));
        // What goes to the client is one line whatever the reason holds.
        std::string bye = imap_bye_line(std::string("x\r\n* OK injected\x00\x1b[2J", 20));
        CPPUNIT_ASSERT_EQUAL(bye.size() - 2, bye.find('\n') - 1);
        CPPUNIT_ASSERT(bye.find('\x1b') == std::string::npos);
    }

    void imap_temporary_codes() {
        CPPUNIT_ASSERT(imap_code_is_temporary("UNAVAILABLE"));
        CPPUNIT_ASSERT(imap_code_is_temporary("unavailable"));
        CPPUNIT_ASSERT(imap_code_is_temporary("INUSE"));
        CPPUNIT_ASSERT(imap_code_is_temporary("LIMIT x"));
        CPPUNIT_ASSERT(imap_code_is_temporary("SERVERBUG"));
        CPPUNIT_ASSERT(!imap_code_is_temporary("AUTHENTICATIONFAILED"));
        CPPUNIT_ASSERT(!imap_code_is_temporary("AUTHORIZATIONFAILED"));
        CPPUNIT_ASSERT(!imap_code_is_temporary(""));
    }

    void pop3_status_table() {
        struct Case {
            std::string line;
            Pop3Status::Kind kind;
            std::string code, text;
        } cases[] = {
            {"+OK Dovecot ready.", Pop3Status::Ok, "", "Dovecot ready."},
            {"+OK", Pop3Status::Ok, "", ""},
            {"-ERR [AUTH] Authentication failed.", Pop3Status::Err, "AUTH", "Authentication failed."},
            {"-ERR [SYS/TEMP] later", Pop3Status::Err, "SYS/TEMP", "later"},
            {"-ERR", Pop3Status::Err, "", ""},
            {"+ eyJ9", Pop3Status::Continuation, "", "eyJ9"},
            {"+ ", Pop3Status::Continuation, "", ""},
            {"+", Pop3Status::Continuation, "", ""},
            {"+ok lower", Pop3Status::Invalid, "", ""},
            {"* OK imap", Pop3Status::Invalid, "", ""},
            {"", Pop3Status::Invalid, "", ""},
        };
        for (const auto& c : cases) {
            Pop3Status s = parse_pop3_status(c.line);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, static_cast<int>(c.kind), static_cast<int>(s.kind));
            if (c.kind == Pop3Status::Invalid) continue;
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, c.code, s.code);
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, c.text, s.text);
        }
        CPPUNIT_ASSERT(pop3_code_is_temporary("SYS/TEMP"));
        CPPUNIT_ASSERT(pop3_code_is_temporary("in-use"));
        CPPUNIT_ASSERT(pop3_code_is_temporary("LOGIN-DELAY"));
        CPPUNIT_ASSERT(!pop3_code_is_temporary("AUTH"));
        CPPUNIT_ASSERT(!pop3_code_is_temporary("SYS/PERM"));
    }

    void pop3_capa() {
        Caps server = {"CAPA", "TOP", "UIDL", "STLS", "SASL PLAIN XOAUTH2", "USER", "user", "", "RESP-CODES",
                       ".odd"};
        Caps want = {"CAPA", "TOP", "UIDL", "RESP-CODES", ".odd"};
        CPPUNIT_ASSERT(pop3_client_capa(server) == want);
        CPPUNIT_ASSERT_EQUAL(std::string("+OK Capability list follows\r\nTOP\r\n..odd\r\n.\r\n"),
                             pop3_capa_reply({"TOP", ".odd"}));
        CPPUNIT_ASSERT_EQUAL(std::string("+OK Capability list follows\r\n.\r\n"), pop3_capa_reply({}));
    }

    void pop3_front_table() {
        struct Case {
            std::string line;
            Pop3Front action;
        } cases[] = {
            {"USER alice", Pop3Front::AnswerOk},
            {"user alice", Pop3Front::AnswerOk},
            {"PASS secret", Pop3Front::AnswerOk},
            {"APOP alice 0123", Pop3Front::AnswerOk},
            {"AUTH XOAUTH2", Pop3Front::AnswerOk},
            {"AUTH PLAIN dGVzdA==", Pop3Front::AnswerOk},
            {"AUTH", Pop3Front::AnswerAuthList},
            {"CAPA", Pop3Front::AnswerCapa},
            {"capa", Pop3Front::AnswerCapa},
            {"STLS", Pop3Front::AnswerStls},
            {"STAT", Pop3Front::Forward},
            {"UIDL", Pop3Front::Forward},
            {"QUIT", Pop3Front::Forward},
            {"USERX", Pop3Front::Forward},
            {"", Pop3Front::Forward},
        };
        for (const auto& c : cases)
            CPPUNIT_ASSERT_EQUAL_MESSAGE(c.line, static_cast<int>(c.action),
                                         static_cast<int>(classify_pop3_command(c.line)));
    }

    void base64_round_trip_and_strictness() {
        struct Case {
            std::string raw, b64;
        } cases[] = {
            {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
            {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}, {"\x01", "AQ=="},
            {std::string("\xff\xfe\x00", 3), "//4A"},
        };
        for (const auto& c : cases) {
            CPPUNIT_ASSERT_EQUAL(c.b64, base64_encode(c.raw));
            std::string out;
            CPPUNIT_ASSERT(base64_decode(c.b64, out));
            CPPUNIT_ASSERT_EQUAL(c.raw, out);
        }
        std::string out;
        for (const char* bad : {"Zg=", "Zg", "Z===", "Zm9v=", "Zm=v", "Zm9v Zg==", "Zg==Zg==", "Zm9\n", "Zh==", "zzT="})
            CPPUNIT_ASSERT_MESSAGE(bad, !base64_decode(bad, out));
        std::string all;
        for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
        CPPUNIT_ASSERT(base64_decode(base64_encode(all), out));
        CPPUNIT_ASSERT(out == all);
    }

    void error_challenge_described() {
        // Dovecot's and Microsoft's XOAUTH2 error challenge, RFC 7628's.
        CPPUNIT_ASSERT_EQUAL(std::string("status 401, scope https://mail.google.com/"),
                             describe_error_challenge(base64_encode(
                                 R"({"status":"401","schemes":"bearer","scope":"https://mail.google.com/"})")));
        CPPUNIT_ASSERT_EQUAL(std::string("status invalid_token"),
                             describe_error_challenge(base64_encode(R"({"status":"invalid_token"})")));
        CPPUNIT_ASSERT_EQUAL(std::string(""), describe_error_challenge("not base64!"));
        CPPUNIT_ASSERT_EQUAL(std::string(""), describe_error_challenge(base64_encode("not json")));
        CPPUNIT_ASSERT_EQUAL(std::string(""), describe_error_challenge(base64_encode("{}")));
        std::string d = describe_error_challenge(base64_encode("{\"status\":\"4\\u001b[2J01\"}"));
        CPPUNIT_ASSERT(d.find('\x1b') == std::string::npos);
    }

    void peer_text_and_one_line() {
        CPPUNIT_ASSERT_EQUAL(std::string("abc"), peer_text("abc"));
        // common/sanitize: ESC, a raw C1 byte and U+009B in UTF-8 each
        // become one '?'; a cut fits the cap with its marker.
        CPPUNIT_ASSERT_EQUAL(std::string("a?b?c?"), peer_text(std::string("a\x1b" "b\x9b" "c\xc2\x9b", 7)));
        CPPUNIT_ASSERT_EQUAL(std::string("ab..."), peer_text("abcdef", 5));
        CPPUNIT_ASSERT_EQUAL(std::string("a b c"), one_line("a\r\n b\tc\n"));
        CPPUNIT_ASSERT_EQUAL(std::string("ab..."), one_line("abcdef", 5));
        CPPUNIT_ASSERT_EQUAL(std::string(""), one_line("\r\n"));
    }
};

CPPUNIT_TEST_SUITE_REGISTRATION(ConnectProtoTest);
