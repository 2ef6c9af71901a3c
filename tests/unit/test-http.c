/* SPDX-License-Identifier: MIT */
/* http.c against a real local HTTPS server (Python's http.server + ssl, cert made at start). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "http.h"
#include "macro.h"

#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_PER_SEC UINT64_C(1000000)

static const char server_py[] =
        "import http.server, json, ssl, sys, time\n"
        "cert, key = sys.argv[1], sys.argv[2]\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    protocol_version = 'HTTP/1.1'\n"
        "    def log_message(self, *a):\n"
        "        pass\n"
        "    def reply(self, code, body, ctype='application/json', extra=(), length=True):\n"
        "        self.send_response(code)\n"
        "        self.send_header('Content-Type', ctype)\n"
        "        for k, v in extra:\n"
        "            self.send_header(k, v)\n"
        "        if length:\n"
        "            self.send_header('Content-Length', str(len(body)))\n"
        "        else:\n"
        "            self.send_header('Connection', 'close')\n"
        "            self.close_connection = True\n"
        "        self.end_headers()\n"
        "        self.wfile.write(body)\n"
        "    def do_GET(self):\n"
        "        p = self.path\n"
        "        if p == '/json':\n"
        "            self.reply(200, json.dumps({'ok': True, 'ua': self.headers.get('User-Agent'),\n"
        "                                        'accept': self.headers.get('Accept')}).encode())\n"
        "        elif p.startswith('/status/'):\n"
        "            code = int(p[8:])\n"
        "            extra = []\n"
        "            if code == 401:\n"
        "                extra = [('WWW-Authenticate', 'Bearer error=\"invalid_token\"')]\n"
        "            self.reply(code, b'{}', extra=extra)\n"
        "        elif p.startswith('/retry/'):\n"
        "            _, _, code, value = p.split('/', 3)\n"
        "            self.reply(int(code), b'{}', extra=[('Retry-After', value.replace('_', ' '))])\n"
        "        elif p == '/big':\n"
        "            self.reply(200, b'x' * (2 * 1024 * 1024), ctype='application/octet-stream')\n"
        "        elif p == '/bigstream':\n"
        "            self.reply(200, b'y' * (2 * 1024 * 1024), ctype='application/octet-stream',\n"
        "                       length=False)\n"
        "        elif p == '/empty':\n"
        "            self.reply(204, b'', ctype='text/plain')\n"
        "        elif p == '/redirect':\n"
        "            self.reply(302, b'', extra=[('Location', '/json')])\n"
        "        elif p.startswith('/slowbody/'):\n"
        "            body = b'z' * 20000\n"
        "            self.send_response(200)\n"
        "            self.send_header('Content-Type', 'application/json')\n"
        "            self.send_header('Content-Length', str(len(body)))\n"
        "            self.end_headers()\n"
        "            self.wfile.write(body[:10000])\n"
        "            self.wfile.flush()\n"
        "            open(p[len('/slowbody'):], 'w').close()\n"
        "            time.sleep(3)\n"
        "            self.wfile.write(body[10000:])\n"
        "        elif p.startswith('/late/'):\n"
        "            open(p[len('/late'):], 'w').close()\n"
        "            time.sleep(1)\n"
        "            self.reply(200, b'{}')\n"
        "        elif p == '/hang':\n"
        "            time.sleep(3600)\n"
        "        else:\n"
        "            self.reply(404, b'{}')\n"
        "    def do_POST(self):\n"
        "        n = int(self.headers.get('Content-Length', '0'))\n"
        "        data = self.rfile.read(n).decode()\n"
        "        if self.path == '/echo':\n"
        "            self.reply(200, json.dumps({'method': self.command, 'body': data,\n"
        "                'authorization': self.headers.get('Authorization'),\n"
        "                'content_type': self.headers.get('Content-Type')}).encode())\n"
        "        else:\n"
        "            self.reply(404, b'{}')\n"
        "    do_PATCH = do_POST\n"
        "class S(http.server.ThreadingHTTPServer):\n"
        "    daemon_threads = True\n"
        "    def handle_error(self, request, client_address):\n"
        "        pass\n"
        "srv = S(('127.0.0.1', 0), H)\n"
        "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
        "ctx.load_cert_chain(cert, key)\n"
        "srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
        "print(srv.server_address[1], flush=True)\n"
        "srv.serve_forever()\n";

static char tmpdir[256];
static char cert_path[300], key_path[300];
static pid_t server_pid = -1;
static int server_port;

/* openssl req -x509 … into cert_path/key_path, quietly. */
static int make_certificate(void) {
        pid_t pid;
        int status;

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (fd >= 0) {
                        (void) dup2(fd, STDOUT_FILENO);
                        (void) dup2(fd, STDERR_FILENO);
                }
                execl("/usr/bin/openssl", "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                      "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                      "-keyout", key_path, "-out", cert_path, (char *) NULL);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void rm_rf_tmpdir(void) {
        (void) unlink(cert_path);
        (void) unlink(key_path);
        (void) rmdir(tmpdir);
}

static int start_server(void **state) {
        const char *t = getenv("TMPDIR");
        char port_buf[32] = "";
        int pfd[2];
        ssize_t n;
        size_t got = 0;

        snprintf(tmpdir, sizeof tmpdir, "%s/test-http-XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(cert_path, sizeof cert_path, "%s/cert.pem", tmpdir);
        snprintf(key_path, sizeof key_path, "%s/key.pem", tmpdir);

        if (make_certificate() < 0) {
                fprintf(stderr, "openssl req failed\n");
                rm_rf_tmpdir();
                return -1;
        }

        if (pipe2(pfd, O_CLOEXEC) < 0)
                return -1;
        server_pid = fork();
        if (server_pid < 0)
                return -1;
        if (server_pid == 0) {
                /* Don't outlive the test, whatever happens to it. */
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                (void) dup2(pfd[1], STDOUT_FILENO);
                execl("/usr/bin/python3", "python3", "-c", server_py, cert_path, key_path, (char *) NULL);
                _exit(127);
        }
        close(pfd[1]);
        while (got < sizeof port_buf - 1) {
                struct pollfd p = { .fd = pfd[0], .events = POLLIN };

                /* A generous bound so a broken server fails the test instead of hanging it. */
                if (poll(&p, 1, 60 * 1000) <= 0)
                        break;
                n = read(pfd[0], port_buf + got, sizeof port_buf - 1 - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t) n;
                if (memchr(port_buf, '\n', got))
                        break;
        }
        close(pfd[0]);
        server_port = atoi(port_buf);
        if (server_port <= 0) {
                fprintf(stderr, "test HTTPS server did not start\n");
                return -1;
        }

        /* The untrusted-certificate test must not see a CA bundle from the environment. */
        unsetenv("SSL_CERT_FILE");
        unsetenv("CURL_CA_BUNDLE");
        unsetenv("SSL_CERT_DIR");
        *state = NULL;
        return 0;
}

static int stop_server(void **state) {
        if (server_pid > 0) {
                (void) kill(server_pid, SIGKILL);
                (void) waitpid(server_pid, NULL, 0);
                server_pid = -1;
        }
        rm_rf_tmpdir();
        return 0;
}

static char *url(const char *host, const char *path) {
        char *u = NULL;

        assert_true(asprintf(&u, "https://%s:%d%s", host, server_port, path) > 0);
        return u;
}

static HttpClient *trusting_client(void) {
        HttpClient *c = NULL;

        assert_int_equal(http_client_new(cert_path, &c), 0);
        assert_non_null(c);
        return c;
}

static void test_get_json(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *u = url("localhost", "/json");
        HttpResponse r = {};
        json_t *j;

        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        assert_non_null(r.body);
        assert_int_equal(strlen(r.body), r.body_len);
        assert_string_equal(r.content_type, "application/json");
        assert_null(r.www_authenticate);

        j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_true(json_is_true(json_object_get(j, "ok")));
        assert_string_equal(json_string_value(json_object_get(j, "ua")), "ssf-sessiond/" SSF_VERSION);
        assert_string_equal(json_string_value(json_object_get(j, "accept")), "application/json");
        json_decref(j);

        http_response_done(&r);
        assert_null(r.body);
        http_client_free(c);
}

static void test_ip_address_host(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *u = url("127.0.0.1", "/json");
        HttpResponse r = {};

        /* Reusing the client for several requests works. */
        for (int i = 0; i < 3; i++) {
                assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
                assert_int_equal(r.status, 200);
                http_response_done(&r);
        }
        http_client_free(c);
}

static void test_status_codes(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *u404 = url("localhost", "/status/404");
        _cleanup_free_ char *u401 = url("localhost", "/status/401");
        _cleanup_free_ char *u503 = url("localhost", "/status/503");
        _cleanup_free_ char *uempty = url("localhost", "/empty");
        _cleanup_free_ char *uredir = url("localhost", "/redirect");
        HttpResponse r = {};

        assert_int_equal(http_request(c, "GET", u404, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 404);
        http_response_done(&r);

        assert_int_equal(http_request(c, "GET", u401, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 401);
        assert_string_equal(r.www_authenticate, "Bearer error=\"invalid_token\"");
        http_response_done(&r);

        assert_int_equal(http_request(c, "GET", u503, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 503);
        http_response_done(&r);

        assert_int_equal(http_request(c, "GET", uempty, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 204);
        assert_null(r.body);
        assert_int_equal(r.body_len, 0);
        assert_string_equal(r.content_type, "text/plain");
        http_response_done(&r);

        /* Redirects are reported, not followed. */
        assert_int_equal(http_request(c, "GET", uredir, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 302);
        http_response_done(&r);

        http_client_free(c);
}

/* The Retry-After hold: a 429/503 with a usable Retry-After refuses every later request of the
 * client (-EBUSY, no network) except http_get_unheld(); other answers start no hold. */
static void test_retry_after_hold(void **state) {
        _cleanup_free_ char *u200 = url("localhost", "/retry/200/60");
        _cleanup_free_ char *u503bad = url("localhost", "/retry/503/soon");
        _cleanup_free_ char *u429 = url("localhost", "/retry/429/120");
        _cleanup_free_ char *u503date = url("localhost", "/retry/503/Fri,_01_Jan_2100_00:00:00_GMT");
        _cleanup_free_ char *ujson = url("localhost", "/json");
        HttpClient *c = trusting_client(), *clone = NULL;
        HttpResponse r = {};

        /* A Retry-After on a 200, or one that is not a delay: kept, but no hold. */
        assert_int_equal(http_request(c, "GET", u200, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_string_equal(r.retry_after, "60");
        http_response_done(&r);
        assert_int_equal(http_request(c, "GET", u503bad, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 503);
        assert_string_equal(r.retry_after, "soon");
        http_response_done(&r);
        assert_int_equal(http_client_hold_left(c), 0);

        /* 429 with 120 s: held for about that long (never more). */
        assert_int_equal(http_request(c, "GET", u429, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 429);
        http_response_done(&r);
        assert_true(http_client_hold_left(c) > 60 * USEC_PER_SEC);
        assert_true(http_client_hold_left(c) <= 120 * USEC_PER_SEC);
        assert_int_equal(http_request(c, "GET", ujson, NULL, NULL, 10 * USEC_PER_SEC, 0, &r),
                         -EBUSY);
        assert_int_equal(http_request_full(c, "POST", ujson, NULL, "a=b",
                                           "application/x-www-form-urlencoded",
                                           10 * USEC_PER_SEC, 0, &r), -EBUSY);
        assert_null(r.body);
        /* ...but not a JWKS-style fetch, which neither waits for nor extends the hold. */
        assert_int_equal(http_get_unheld(c, ujson, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        http_response_done(&r);
        /* A clone (the flush on shutdown) is held as well. */
        assert_int_equal(http_client_clone(c, &clone), 0);
        assert_int_equal(http_request(clone, "GET", ujson, NULL, NULL, 10 * USEC_PER_SEC, 0, &r),
                         -EBUSY);
        http_client_free(clone);
        /* A client that made its request for another (the poll sent ahead) hands its hold
         * over: merged, the later of the two. */
        clone = trusting_client();
        assert_int_equal(http_client_hold_left(clone), 0);
        http_client_hold_merge(c, clone); /* an earlier end changes nothing */
        assert_true(http_client_hold_left(c) > 60 * USEC_PER_SEC);
        http_client_hold_merge(clone, c);
        assert_true(http_client_hold_left(clone) > 60 * USEC_PER_SEC);
        assert_int_equal(http_request(clone, "GET", ujson, NULL, NULL, 10 * USEC_PER_SEC, 0, &r),
                         -EBUSY);
        http_client_free(clone);
        http_client_free(c);

        /* An HTTP date far ahead: capped at 5 minutes. */
        c = trusting_client();
        assert_int_equal(http_get_unheld(c, u503date, 10 * USEC_PER_SEC, 0, &r), 0);
        http_response_done(&r);
        assert_int_equal(http_client_hold_left(c), 0); /* unheld: starts none */
        assert_int_equal(http_request(c, "GET", u503date, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 503);
        http_response_done(&r);
        assert_true(http_client_hold_left(c) > 200 * USEC_PER_SEC);
        assert_true(http_client_hold_left(c) <= 300 * USEC_PER_SEC);
        http_client_free(c);
}

static void test_post_echo(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *u = url("localhost", "/echo");
        HttpResponse r = {};
        json_t *j;

        assert_int_equal(http_request(c, "POST", u, "Bearer s3cret", "{\"ack\":[\"a\"]}", 10 * USEC_PER_SEC,
                                      0, &r),
                         0);
        assert_int_equal(r.status, 200);
        j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
        assert_string_equal(json_string_value(json_object_get(j, "authorization")), "Bearer s3cret");
        assert_string_equal(json_string_value(json_object_get(j, "content_type")), "application/json");
        assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"ack\":[\"a\"]}");
        json_decref(j);
        http_response_done(&r);

        /* Other methods, no Authorization. */
        assert_int_equal(http_request(c, "PATCH", u, NULL, "{}", 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "method")), "PATCH");
        assert_true(json_is_null(json_object_get(j, "authorization")));
        json_decref(j);
        http_response_done(&r);

        http_client_free(c);
}

static void test_post_form(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *u = url("localhost", "/echo");
        HttpResponse r = {};
        json_t *j;

        assert_int_equal(http_request_full(c, "POST", u, "Basic YTpi", "grant_type=client_credentials&scope=a+b",
                                           "application/x-www-form-urlencoded", 10 * USEC_PER_SEC, 0, &r),
                         0);
        assert_int_equal(r.status, 200);
        j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
        assert_string_equal(json_string_value(json_object_get(j, "authorization")), "Basic YTpi");
        assert_string_equal(json_string_value(json_object_get(j, "content_type")),
                            "application/x-www-form-urlencoded");
        assert_string_equal(json_string_value(json_object_get(j, "body")),
                            "grant_type=client_credentials&scope=a+b");
        json_decref(j);
        http_response_done(&r);

        /* No content type: JSON, as with http_request(). */
        assert_int_equal(http_request_full(c, "POST", u, NULL, "{}", NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        j = json_loads(r.body, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "content_type")), "application/json");
        json_decref(j);
        http_response_done(&r);

        /* A content type that would inject a header, or an empty one, is refused. */
        assert_int_equal(http_request_full(c, "POST", u, NULL, "x=1", "text/plain\r\nX-Injected: 1",
                                           10 * USEC_PER_SEC, 0, &r),
                         -EINVAL);
        assert_int_equal(http_request_full(c, "POST", u, NULL, "x=1", "", 10 * USEC_PER_SEC, 0, &r), -EINVAL);
        assert_null(r.body);

        http_client_free(c);
}

static void test_body_cap(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *big = url("localhost", "/big");
        _cleanup_free_ char *stream = url("localhost", "/bigstream");
        HttpResponse r = {};

        /* Content-Length above the cap, and a close-delimited body above the cap. */
        assert_int_equal(http_request(c, "GET", big, NULL, NULL, 10 * USEC_PER_SEC, 1024 * 1024, &r), -EFBIG);
        assert_int_equal(http_request(c, "GET", stream, NULL, NULL, 10 * USEC_PER_SEC, 1024 * 1024, &r),
                         -EFBIG);
        /* The default cap is 1 MiB. */
        assert_int_equal(http_request(c, "GET", stream, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -EFBIG);

        /* Exactly at or above the size: fine. */
        assert_int_equal(http_request(c, "GET", big, NULL, NULL, 10 * USEC_PER_SEC, 2 * 1024 * 1024, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 2 * 1024 * 1024);
        assert_int_equal(r.body[0], 'x');
        assert_int_equal(r.body[r.body_len - 1], 'x');
        assert_int_equal(r.body[r.body_len], 0);
        http_response_done(&r);

        assert_int_equal(http_request(c, "GET", stream, NULL, NULL, 10 * USEC_PER_SEC, 4 * 1024 * 1024, &r),
                         0);
        assert_int_equal(r.body_len, 2 * 1024 * 1024);
        assert_int_equal(r.body[r.body_len - 1], 'y');
        http_response_done(&r);

        http_client_free(c);
}

static void test_bad_arguments(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *u = url("localhost", "/json");
        HttpResponse r = {};
        char plain[128];

        snprintf(plain, sizeof plain, "http://127.0.0.1:%d/json", server_port);
        assert_int_equal(http_request(c, "GET", plain, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -EINVAL);
        assert_int_equal(http_request(c, "GET", "ftp://127.0.0.1/x", NULL, NULL, 10 * USEC_PER_SEC, 0, &r),
                         -EINVAL);
        assert_int_equal(http_request(c, "GET", "", NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -EINVAL);
        assert_int_equal(http_request(c, "get", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -EINVAL);
        assert_int_equal(http_request(c, "GET\r\nX", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -EINVAL);
        assert_int_equal(http_request(c, "GET", u, "Bearer a\r\nX-Injected: 1", NULL, 10 * USEC_PER_SEC, 0, &r),
                         -EINVAL);
        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 0, 0, &r), -EINVAL);
        assert_int_equal(http_request(NULL, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -EINVAL);
        assert_null(r.body);
        assert_int_equal(r.status, 0);

        /* The client still works afterwards. */
        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        http_response_done(&r);
        http_client_free(c);
}

static void test_untrusted_certificate(void **state) {
        HttpClient *c = NULL;
        _cleanup_free_ char *u = url("localhost", "/json");
        HttpResponse r = {};

        /* No ca_file: the system store does not know our self-signed certificate. */
        assert_int_equal(http_client_new(NULL, &c), 0);
        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -EPROTO);
        http_client_free(c);

        /* Even with the CA bundle variables pointing at our cert, the library default is used. */
        assert_int_equal(setenv("SSL_CERT_FILE", cert_path, 1), 0);
        assert_int_equal(setenv("CURL_CA_BUNDLE", cert_path, 1), 0);
        assert_int_equal(http_client_new(NULL, &c), 0);
        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -EPROTO);
        http_client_free(c);
        unsetenv("SSL_CERT_FILE");
        unsetenv("CURL_CA_BUNDLE");

        /* A ca_file that does not exist is an error, not a fallback: it is read when the client
         * is made. */
        c = NULL;
        assert_int_equal(http_client_new("/nonexistent/ca.pem", &c), -ENOENT);
        assert_null(c);
}

static void test_connection_refused(void **state) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof sa;
        HttpClient *c = trusting_client();
        HttpResponse r = {};
        char u[128];
        int fd;

        /* A port that was just free and is not listening. */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
        snprintf(u, sizeof u, "https://127.0.0.1:%d/json", ntohs(sa.sin_port));
        close(fd);

        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -ECONNREFUSED);
        http_client_free(c);
}

static void test_timeout(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *u = url("localhost", "/hang");
        _cleanup_free_ char *ok = url("localhost", "/json");
        HttpResponse r = {};

        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 500 * USEC_PER_MSEC, 0, &r), -ETIMEDOUT);
        assert_null(r.body);

        assert_int_equal(http_request(c, "GET", ok, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        http_response_done(&r);
        http_client_free(c);
}

typedef struct AbortArgs {
        HttpClient *client;
        const char *url;
        int result;
        size_t body_len;
        bool interruptible;
} AbortArgs;

static void *abort_thread(void *p) {
        AbortArgs *a = p;
        HttpResponse r = {};

        a->result = (a->interruptible ? http_request_interruptible : http_request)(
                a->client, "GET", a->url, NULL, NULL, 60 * USEC_PER_SEC, 0, &r);
        a->body_len = r.body_len;
        http_response_done(&r);
        return NULL;
}

static void test_abort(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *u = url("localhost", "/hang");
        _cleanup_free_ char *ok = url("localhost", "/json");
        AbortArgs a = { .client = c, .url = u, .result = 1 };
        HttpResponse r = {};
        pthread_t t;

        /* Whether the abort lands during the request or before it starts, the request is cancelled
         * (and not timed out: its timeout is a minute). */
        assert_int_equal(pthread_create(&t, NULL, abort_thread, &a), 0);
        (void) usleep(200 * 1000);
        http_client_abort(c);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(a.result, -ECANCELED);

        /* The abort is consumed: the next request runs normally. */
        assert_int_equal(http_request(c, "GET", ok, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        http_response_done(&r);

        /* An abort while idle cancels the next request, once. */
        http_client_abort(c);
        assert_int_equal(http_request(c, "GET", ok, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -ECANCELED);
        assert_int_equal(http_request(c, "GET", ok, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        http_response_done(&r);

        http_client_free(c);
}

static void test_interrupt(void **state) {
        HttpClient *c = trusting_client();
        _cleanup_free_ char *hang = url("localhost", "/hang");
        _cleanup_free_ char *ok = url("localhost", "/json");
        _cleanup_free_ char *sent = NULL, *slow = NULL;
        AbortArgs a = { .client = c, .url = hang, .result = 1, .interruptible = true };
        HttpResponse r = {};
        pthread_t t;

        /* No answer yet: an interruption cancels the request, as an abort does. */
        assert_int_equal(pthread_create(&t, NULL, abort_thread, &a), 0);
        (void) usleep(200 * 1000);
        http_client_interrupt(c);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_int_equal(a.result, -ECANCELED);

        /* While idle: the next interruptible request is cancelled, once; another request (a
         * management call) is not, and leaves the interruption for it. */
        http_client_interrupt(c);
        assert_int_equal(http_request(c, "GET", ok, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        http_response_done(&r);
        assert_int_equal(http_request_interruptible(c, "GET", ok, NULL, NULL, 10 * USEC_PER_SEC, 0,
                                                    &r), -ECANCELED);
        assert_int_equal(http_request_interruptible(c, "GET", ok, NULL, NULL, 10 * USEC_PER_SEC, 0,
                                                    &r), 0);
        http_response_done(&r);

        /* A request that is not interruptible runs to its answer while one comes. */
        {
                _cleanup_free_ char *arrived = NULL, *late = NULL;

                assert_true(asprintf(&arrived, "%s/late-arrived", tmpdir) > 0);
                (void) unlink(arrived);
                assert_true(asprintf(&late, "https://localhost:%d/late%s", server_port, arrived) > 0);
                a = (AbortArgs) { .client = c, .url = late, .result = 1 };
                assert_int_equal(pthread_create(&t, NULL, abort_thread, &a), 0);
                for (int i = 0; i < 3000 && access(arrived, F_OK) < 0; i++)
                        (void) usleep(10 * 1000);
                assert_int_equal(access(arrived, F_OK), 0);
                http_client_interrupt(c);
                assert_int_equal(pthread_join(t, NULL), 0);
                assert_int_equal(a.result, 0);
                assert_int_equal(http_request_interruptible(c, "GET", ok, NULL, NULL,
                                                            10 * USEC_PER_SEC, 0, &r), -ECANCELED);
                (void) unlink(arrived);
        }

        /* The answer has begun to arrive (the server made the file once its headers and half
         * its body were sent): it is read to its end and returned, and the interruption is
         * spent. */
        assert_true(asprintf(&sent, "%s/slowbody-sent", tmpdir) > 0);
        (void) unlink(sent);
        slow = url("localhost", "/slowbody");
        assert_non_null(slow);
        {
                _cleanup_free_ char *full = NULL;

                assert_true(asprintf(&full, "%s%s", slow, sent) > 0);
                a = (AbortArgs) { .client = c, .url = full, .result = 1, .interruptible = true };
                assert_int_equal(pthread_create(&t, NULL, abort_thread, &a), 0);
                for (int i = 0; i < 3000 && access(sent, F_OK) < 0; i++)
                        (void) usleep(10 * 1000);
                assert_int_equal(access(sent, F_OK), 0);
                /* The file is made once the server's write returned; the client thread reads
                 * the answer when it is next scheduled: give it a moment (the server sends the
                 * rest 3 s after the file). */
                (void) usleep(1000 * 1000);
                http_client_interrupt(c);
                assert_int_equal(pthread_join(t, NULL), 0);
                assert_int_equal(a.result, 0);
                assert_int_equal(a.body_len, 20000);
        }
        assert_int_equal(http_request(c, "GET", ok, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        http_response_done(&r);
        (void) unlink(sent);
        http_client_free(c);
}

/* A loopback port that was just free and is not listening. */
static int refused_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &sl), 0);
        close(fd);
        return ntohs(sa.sin_port);
}

static void test_proxy(void **state) {
        _cleanup_free_ char *u = url("localhost", "/json");
        HttpClient *c = trusting_client(), *clone = NULL;
        HttpResponse r = {};
        char proxy[64];

        snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", refused_port());
        assert_int_equal(http_client_set_proxy(c, "socks5://127.0.0.1:1080"), -EINVAL);
        assert_int_equal(http_client_set_proxy(c, "http://u:p@127.0.0.1:3128"), -EINVAL);
        assert_int_equal(http_client_set_proxy(NULL, proxy), -EINVAL);

        /* The environment's proxy variables are never used: without a proxy, direct. */
        assert_int_equal(setenv("https_proxy", proxy, 1), 0);
        assert_int_equal(setenv("HTTPS_PROXY", proxy, 1), 0);
        assert_int_equal(setenv("ALL_PROXY", proxy, 1), 0);
        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        http_response_done(&r);

        /* With one, every request goes through it (here: nobody listens there), whatever
         * NO_PROXY says; clones keep it. */
        assert_int_equal(setenv("NO_PROXY", "*", 1), 0);
        assert_int_equal(setenv("no_proxy", "localhost,127.0.0.1", 1), 0);
        assert_int_equal(http_client_set_proxy(c, proxy), 0);
        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -ECONNREFUSED);
        assert_int_equal(http_client_clone(c, &clone), 0);
        assert_int_equal(http_request(clone, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), -ECONNREFUSED);
        http_client_free(clone);
        assert_int_equal(http_client_set_proxy(c, NULL), 0);
        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        http_response_done(&r);
        unsetenv("https_proxy");
        unsetenv("HTTPS_PROXY");
        unsetenv("ALL_PROXY");
        unsetenv("NO_PROXY");
        unsetenv("no_proxy");
        http_client_free(c);
}

static void test_client_cert_files(void **state) {
        _cleanup_free_ char *u = url("localhost", "/json");
        HttpClient *c = trusting_client(), *clone = NULL;
        HttpResponse r = {};

        if (geteuid() != 0) {
                print_message("not root: skipping (the key must be root-owned)\n");
                http_client_free(c);
                skip();
        }
        /* The key must be private to root; the certificate only not writable by others. */
        assert_int_equal(chmod(key_path, 0640), 0);
        assert_int_equal(http_client_set_client_cert(c, cert_path, key_path), -EPERM);
        assert_int_equal(chmod(key_path, 0600), 0);
        assert_int_equal(chmod(cert_path, 0666), 0);
        assert_int_equal(http_client_set_client_cert(c, cert_path, key_path), -EPERM);
        assert_int_equal(chmod(cert_path, 0644), 0);
        assert_int_equal(http_client_set_client_cert(c, cert_path, "/nonexistent/key.pem"), -ENOENT);
        assert_int_equal(http_client_set_client_cert(c, cert_path, key_path), 0);
        /* A server that asks for no certificate is unaffected; a clone presents it too. */
        assert_int_equal(http_request(c, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        assert_int_equal(r.status, 200);
        http_response_done(&r);
        assert_int_equal(http_client_clone(c, &clone), 0);
        assert_int_equal(http_request(clone, "GET", u, NULL, NULL, 10 * USEC_PER_SEC, 0, &r), 0);
        http_response_done(&r);
        http_client_free(clone);
        http_client_free(c);
}

static void test_free_null(void **state) {
        HttpResponse r = {};

        assert_null(http_client_free(NULL));
        http_client_abort(NULL);
        http_response_done(&r);
        http_response_done(NULL);
        assert_int_equal(http_client_new(NULL, NULL), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_get_json),
                cmocka_unit_test(test_ip_address_host),
                cmocka_unit_test(test_status_codes),
                cmocka_unit_test(test_retry_after_hold),
                cmocka_unit_test(test_post_echo),
                cmocka_unit_test(test_post_form),
                cmocka_unit_test(test_body_cap),
                cmocka_unit_test(test_bad_arguments),
                cmocka_unit_test(test_untrusted_certificate),
                cmocka_unit_test(test_connection_refused),
                cmocka_unit_test(test_timeout),
                cmocka_unit_test(test_abort),
                cmocka_unit_test(test_interrupt),
                cmocka_unit_test(test_proxy),
                cmocka_unit_test(test_client_cert_files),
                cmocka_unit_test(test_free_null),
        };

        return cmocka_run_group_tests(tests, start_server, stop_server);
}
