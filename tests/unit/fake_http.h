// The one scripted HttpClient (tokenhelper/http.h) of the unit tests: it
// answers from queues of canned replies and records every request, so a
// test says what the provider answers and then checks what was asked.
//
// A request is answered, in this order, from the queue of its URL
// (answer(url, ...)), from the queue for any URL (answer(...)), from
// `otherwise` (every time), and else with a Transport failure, or, when
// `strict` is set, by failing the test.  check_url applies the real rule
// (url_allowed), so hostile URLs are judged as in production; get() refuses
// a body over max_body as CurlHttpClient does.
#ifndef MAILOAUTH_TESTS_UNIT_FAKE_HTTP_H
#define MAILOAUTH_TESTS_UNIT_FAKE_HTTP_H

#include <cppunit/extensions/HelperMacros.h>

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "tokenhelper/http.h"

namespace mailoauth {
namespace testutil {

// A reply with a status and a body, as a provider sends JSON.
inline HttpResult http_reply(long status, const std::string& body) {
    HttpResult r;
    r.response.status = status;
    r.response.content_type = "application/json; charset=utf-8";
    r.response.body = body;
    return r;
}

// A request that got no reply (connection refused, TLS, ...).
inline HttpResult http_failure(HttpFailure f, const std::string& why) {
    HttpResult r;
    r.failure = f;
    r.error = why;
    return r;
}

class FakeHttp : public HttpClient {
public:
    struct Request {
        std::string method;  // "POST" or "GET"
        std::string url;
        std::string body;    // the form; "" for a GET
        double at = 0;       // clock() when it came (0 without a clock)
    };
    std::vector<Request> requests;

    // Called with each request before it is answered (e.g. to look at the
    // store while a refresh is in flight).
    std::function<void()> on_request;
    // Stamps Request::at (a fake clock's time).
    std::function<double()> clock;
    // What a request gets, every time, when no queue holds a reply for it.
    std::optional<HttpResult> otherwise;
    // An unscripted request fails the test (an exception out of the code
    // under test).  Only for requests made on the test's own thread.
    bool strict = false;

    // Queues a reply for the next request to any URL.
    void answer(long status, const std::string& body) { push("", http_reply(status, body)); }
    void fail(HttpFailure f, const std::string& why) { push("", http_failure(f, why)); }
    // Queues a reply for the next request to url.
    void answer(const std::string& url, long status, const std::string& body) {
        push(url, http_reply(status, body));
    }
    void fail(const std::string& url, HttpFailure f, const std::string& why = "scripted failure") {
        push(url, http_failure(f, why));
    }

    // Whether every queued reply has been used.
    bool script_done() const {
        std::lock_guard<std::mutex> g(mu_);
        for (const auto& q : queues_)
            if (!q.second.empty()) return false;
        return true;
    }
    // The latest request (the test fails when there was none).
    const Request& last() const {
        CPPUNIT_ASSERT_MESSAGE("no request was made", !requests.empty());
        return requests.back();
    }

    HttpResult post_form(const std::string& url, const std::string& body, const HttpOptions&) override {
        return take("POST", url, body);
    }
    HttpResult get(const std::string& url, const HttpOptions& o) override {
        HttpResult r = take("GET", url, "");
        if (r.ok() && r.response.body.size() > o.max_body) r = http_failure(HttpFailure::TooLarge, "body too large");
        return r;
    }
    bool check_url(const std::string& url, bool allow_loopback_http, std::string& why) override {
        return url_allowed(url, allow_loopback_http, why);
    }

private:
    void push(const std::string& url, const HttpResult& r) {
        std::lock_guard<std::mutex> g(mu_);
        queues_[url].push_back(r);
    }

    HttpResult take(const char* method, const std::string& url, const std::string& body) {
        {
            std::lock_guard<std::mutex> g(mu_);
            requests.push_back(Request{method, url, body, clock ? clock() : 0});
        }
        if (on_request) on_request();
        std::lock_guard<std::mutex> g(mu_);
        for (const std::string& key : {url, std::string()}) {
            auto it = queues_.find(key);
            if (it == queues_.end() || it->second.empty()) continue;
            HttpResult r = it->second.front();
            it->second.pop_front();
            return r;
        }
        if (otherwise) return *otherwise;
        // Not an assertion unless asked: this may run on another thread,
        // and the test counts requests.
        CPPUNIT_ASSERT_MESSAGE("more requests than the script has answers (" + url + ")", !strict);
        return http_failure(HttpFailure::Transport, "no scripted reply for " + url);
    }

    mutable std::mutex mu_;
    std::map<std::string, std::deque<HttpResult>> queues_;  // "" holds the replies for any URL
};

}  // namespace testutil
}  // namespace mailoauth

#endif
