package xqueue

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge/xqueuetest"
)

const jobBody = `{"action": "create", "username": "jdoe", "course_id": "course-v1:edX+DemoX+Demo_Course", "name": "Zoë \"J\" <Doe> & 🎓"}`

func testClient(t *testing.T, s *xqueuetest.Server, mod func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		BaseURL:   s.URL(),
		Username:  xqueuetest.DefaultUsername,
		Password:  xqueuetest.DefaultPassword,
		RetryBase: time.Millisecond,
		RetryMax:  5 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var md5hex = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRoundTrip(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, nil)
	ctx := ctxT(t)
	if err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}
	id := s.Submit(jobBody)
	if n, err := c.QueueLength(ctx); err != nil || n != 1 {
		t.Fatalf("QueueLength = %d, %v; want 1", n, err)
	}
	sub, err := c.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sub.Header.SubmissionID != id || !md5hex.MatchString(sub.Header.SubmissionKey) {
		t.Fatalf("header %+v, want id %d and an md5 key", sub.Header, id)
	}
	if string(sub.Body) != jobBody || sub.Files != "{}" {
		t.Fatalf("body %q files %q: want the LMS's text verbatim", sub.Body, sub.Files)
	}
	if n, err := c.QueueLength(ctx); err != nil || n != 0 {
		t.Fatalf("QueueLength while leased = %d, %v; want 0", n, err)
	}
	if _, err := c.Pull(ctx); !errors.Is(err, ErrQueueEmpty) {
		t.Fatalf("Pull with everything leased: %v, want ErrQueueEmpty", err)
	}
	result := []byte(`{"action": "create", "download_uuid": "0123456789abcdef0123456789abcdef", "username": "jdoe"}`)
	if err := c.PutResult(ctx, sub.Header, result); err != nil {
		t.Fatal(err)
	}
	cbs := s.Callbacks()
	if len(cbs) != 1 || cbs[0].SubmissionID != id || cbs[0].Body != string(result) || cbs[0].Key != sub.Header.SubmissionKey {
		t.Fatalf("callbacks %+v", cbs)
	}
	if got, _ := s.Submission(id); !got.Retired {
		t.Fatal("submission not retired by the accepted result")
	}
	if st := s.Stats(); st.Logins != 1 || st.Redirects != 0 {
		t.Fatalf("stats %+v: want one login up front and no redirects", st)
	}
}

func TestEncodeHeaderRoundTrips(t *testing.T) {
	h := Header{SubmissionID: 42, SubmissionKey: "abc\"def"}
	got, err := decodeHeader([]byte(EncodeHeader(h)))
	if err != nil || got != h {
		t.Fatalf("EncodeHeader round trip: %+v %v", got, err)
	}
}

func TestReloginAfterSessionExpiry(t *testing.T) {
	s := xqueuetest.NewServer(xqueuetest.WithLease(time.Hour))
	defer s.Close()
	c := testClient(t, s, nil)
	ctx := ctxT(t)
	id := s.Submit(jobBody)
	if _, err := c.QueueLength(ctx); err != nil {
		t.Fatal(err)
	}
	s.DropSessions()
	sub, err := c.Pull(ctx) // 302 -> login -> retry
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Logins != 2 || st.Redirects != 1 || st.Pulls != 1 {
		t.Fatalf("stats %+v: want 2 logins, 1 redirect, 1 pull", st)
	}
	s.DropSessions()
	if err := c.PutResult(ctx, sub.Header, []byte(`{"ok": 1}`)); err != nil {
		t.Fatal(err)
	}
	if n := s.CallbackCount(id); n != 1 {
		t.Fatalf("%d callbacks, want exactly 1", n)
	}
	if st := s.Stats(); st.Logins != 3 || st.Redirects != 2 {
		t.Fatalf("stats %+v: put_result should re-login once", st)
	}

	// The reply a redirect-following client would see: login_required.
	s.DropSessions()
	s.Inject(xqueuetest.Fault{Endpoint: "get_queuelen", Body: `{"return_code": 1, "content": "login_required"}`})
	if _, err := c.QueueLength(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Logins != 4 {
		t.Fatalf("Logins = %d after login_required, want 4", st.Logins)
	}
}

func TestConcurrentCallersLogInOnce(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, nil)
	ctx := ctxT(t)
	run := func() {
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				if _, err := c.QueueLength(ctx); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	run()
	if n := s.Stats().Logins; n != 1 {
		t.Fatalf("%d logins for 16 concurrent first calls, want 1", n)
	}
	s.DropSessions()
	run()
	if n := s.Stats().Logins; n != 2 {
		t.Fatalf("%d logins after the session expired under 16 callers, want 2", n)
	}
}

func TestAuthErrors(t *testing.T) {
	s := xqueuetest.NewServer(xqueuetest.WithBasicAuth("edge", "gate-secret"))
	defer s.Close()
	ctx := ctxT(t)

	noBasic := testClient(t, s, nil)
	_, err := noBasic.QueueLength(ctx)
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("without basic auth: %v, want permanent ErrAuth", err)
	}
	if !strings.Contains(err.Error(), "401") {
		t.Errorf("error %q should name the 401", err)
	}

	withBasic := testClient(t, s, func(c *Config) { c.BasicAuth = "edge:gate-secret" })
	if _, err := withBasic.QueueLength(ctx); err != nil {
		t.Fatalf("with basic auth: %v", err)
	}
	if err := withBasic.Status(ctx); err != nil {
		t.Fatal(err)
	}

	wrongPass := testClient(t, s, func(c *Config) { c.BasicAuth = "edge:gate-secret"; c.Password = "wrong-pass" })
	before := s.Stats().FailedLogins
	_, err = wrongPass.Pull(ctx)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "Incorrect login credentials") {
		t.Fatalf("wrong password: %v", err)
	}
	if n := s.Stats().FailedLogins - before; n != 1 {
		t.Fatalf("%d login attempts with a wrong password, want 1 (no retry)", n)
	}
}

func TestIncorrectKeyAfterLeaseExpiry(t *testing.T) {
	s := xqueuetest.NewServer(xqueuetest.WithLease(time.Hour))
	defer s.Close()
	c := testClient(t, s, nil)
	ctx := ctxT(t)
	id := s.Submit(jobBody)
	first, err := c.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.ExpireLeases()
	second, err := c.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second.Header.SubmissionID != id || second.Header.SubmissionKey == first.Header.SubmissionKey {
		t.Fatalf("re-offer %+v after %+v: want same id, new key", second.Header, first.Header)
	}
	err = c.PutResult(ctx, first.Header, []byte(`{}`))
	if !errors.Is(err, ErrIncorrectKey) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("old key: %v, want permanent ErrIncorrectKey", err)
	}
	if err := c.PutResult(ctx, second.Header, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	err = c.PutResult(ctx, Header{SubmissionID: 999, SubmissionKey: second.Header.SubmissionKey}, []byte(`{}`))
	if !errors.Is(err, ErrNoSubmission) {
		t.Fatalf("unknown id: %v, want ErrNoSubmission", err)
	}
	if n := s.CallbackCount(id); n != 1 {
		t.Fatalf("%d callbacks, want 1", n)
	}
}

func TestPutResultOutcomeUnknownIsNotRetried(t *testing.T) {
	s := xqueuetest.NewServer(xqueuetest.WithLMSLatency(400 * time.Millisecond))
	defer s.Close()
	c := testClient(t, s, func(c *Config) { c.ResultTimeout = 50 * time.Millisecond })
	ctx := ctxT(t)
	id := s.Submit(jobBody)
	sub, err := c.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = c.PutResult(ctx, sub.Header, []byte(`{"n": 1}`))
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("put_result outlasting ResultTimeout: %v, want ErrOutcomeUnknown only", err)
	}
	// xqueue finishes the LMS callback although the client stopped waiting.
	if _, err := s.WaitCallbacks(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.PutResults != 1 || st.Callbacks != 1 || s.CallbackCount(id) != 1 {
		t.Fatalf("stats %+v: the client retried an unknown outcome", st)
	}

	// 500 and 504 after xqueue acted, and a connection dropped after sending.
	// A client with the default timeout, so that a slow machine cannot turn
	// these into plain timeouts.
	s.SetLMSLatency(0)
	c = testClient(t, s, nil)
	for _, f := range []xqueuetest.Fault{
		{Endpoint: "put_result", Status: http.StatusGatewayTimeout, AfterHandling: true},
		{Endpoint: "put_result", Status: http.StatusInternalServerError, AfterHandling: true},
		{Endpoint: "put_result", Drop: true, AfterHandling: true},
	} {
		before := s.Stats()
		s.Inject(f)
		err := c.PutResult(ctx, sub.Header, []byte(`{"n": 2}`))
		if !errors.Is(err, ErrOutcomeUnknown) {
			t.Fatalf("fault %+v: %v, want ErrOutcomeUnknown", f, err)
		}
		after := s.Stats()
		if after.PutResults-before.PutResults != 1 || after.Callbacks-before.Callbacks != 1 {
			t.Fatalf("fault %+v: %d put_results, %d callbacks; want 1 and 1 (no retry)", f,
				after.PutResults-before.PutResults, after.Callbacks-before.Callbacks)
		}
	}
	// A 200 with garbage after sending is unknown too (and a bad reply).
	s.Inject(xqueuetest.Fault{Endpoint: "put_result", Body: "<html>oops</html>"})
	err = c.PutResult(ctx, sub.Header, []byte(`{}`))
	if !errors.Is(err, ErrOutcomeUnknown) || !errors.Is(err, ErrBadReply) {
		t.Fatalf("garbage answer: %v", err)
	}
}

func TestPutResultRetriedWhenItCertainlyDidNotArrive(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, nil)
	ctx := ctxT(t)
	id := s.Submit(jobBody)
	sub, err := c.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Inject(xqueuetest.Fault{Endpoint: "put_result", Status: http.StatusBadGateway})
	s.Inject(xqueuetest.Fault{Endpoint: "put_result", Status: http.StatusServiceUnavailable})
	if err := c.PutResult(ctx, sub.Header, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.FaultsApplied != 2 || s.CallbackCount(id) != 1 {
		t.Fatalf("stats %+v, callbacks %d: want 2 faults survived and 1 callback", st, s.CallbackCount(id))
	}

	// Nobody listening: connection refused on every attempt.
	s.Close()
	c.hc.CloseIdleConnections()
	err = c.PutResult(ctx, sub.Header, []byte(`{}`))
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("connection refused: %v, want transient ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "5 attempts") {
		t.Errorf("error %q should say how often it tried", err)
	}
}

func TestGetRetriesTransientFailures(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, func(c *Config) { c.MaxAttempts = 3 })
	ctx := ctxT(t)
	s.Submit(jobBody)
	s.Inject(xqueuetest.Fault{Endpoint: "get_submission", Status: 500, Count: 1})
	s.Inject(xqueuetest.Fault{Endpoint: "get_submission", Status: 502, Count: 1})
	if _, err := c.Pull(ctx); err != nil {
		t.Fatalf("Pull after two 5xx: %v", err)
	}
	s.Inject(xqueuetest.Fault{Endpoint: "login", Status: 503, Count: 2})
	s.DropSessions()
	if _, err := c.QueueLength(ctx); err != nil {
		t.Fatalf("QueueLength with a flaky login: %v", err)
	}

	s.Inject(xqueuetest.Fault{Endpoint: "get_queuelen", Status: 502, Count: 10})
	before := s.Stats().Requests
	_, err := c.QueueLength(ctx)
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "HTTP 502") {
		t.Fatalf("persistent 502: %v, want transient ErrUnavailable", err)
	}
	if n := s.Stats().Requests - before; n != 3 {
		t.Fatalf("%d requests, want MaxAttempts=3", n)
	}

	// Backoff respects the context (7 of the 502s are still queued).
	slow := testClient(t, s, func(c *Config) { c.RetryBase, c.RetryMax = time.Hour, time.Hour })
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_, err = slow.QueueLength(short)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("backoff past the deadline: %v", err)
	}
}

func TestQueueNotFound(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, func(c *Config) { c.Queue = "nope" })
	ctx := ctxT(t)
	if _, err := c.Pull(ctx); !errors.Is(err, ErrQueueNotFound) {
		t.Fatalf("Pull: %v", err)
	}
	_, err := c.QueueLength(ctx)
	if !errors.Is(err, ErrQueueNotFound) || !strings.Contains(err.Error(), "certificates") {
		t.Fatalf("QueueLength: %v, want ErrQueueNotFound listing the valid names", err)
	}
}

func TestMalformedReplies(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, func(c *Config) { c.MaxReplyBytes = 4096 })
	ctx := ctxT(t)
	if err := c.Login(ctx); err != nil {
		t.Fatal(err)
	}
	wrap := func(inner string) string { // get_submission content as xqueue encodes it
		return `{"return_code": 0, "content": ` + jsonString(inner) + `}`
	}
	goodHeader := jsonString(`{"submission_id": 7, "submission_key": "k"}`)
	cases := []struct {
		name, endpoint, body, want string
	}{
		{"html page", "get_submission", "<html>Bad Gateway</html>", "not a JSON object"},
		{"empty", "get_queuelen", "", "not a JSON object"},
		{"array", "get_queuelen", `[0, 5]`, "not a JSON object"},
		{"no return_code", "get_queuelen", `{"content": 5}`, "no return_code"},
		{"no content", "get_queuelen", `{"return_code": 0}`, "no content"},
		{"return_code 2", "get_queuelen", `{"return_code": 2, "content": 5}`, "not 0 or 1"},
		{"return_code bool", "get_queuelen", `{"return_code": true, "content": 5}`, "not 0 or 1"},
		{"length text", "get_queuelen", `{"return_code": 0, "content": "five"}`, "queue length"},
		{"length negative", "get_queuelen", `{"return_code": 0, "content": -1}`, "out of range"},
		{"length fraction", "get_queuelen", `{"return_code": 0, "content": 1.5}`, "not an integer"},
		{"content number", "get_submission", `{"return_code": 0, "content": 5}`, "not a JSON string"},
		{"content not JSON", "get_submission", wrap(`xqueue_header=1`), "payload is not a JSON object"},
		{"payload no header", "get_submission", wrap(`{"xqueue_body": "{}"}`), "lacks xqueue_header"},
		{"payload no body", "get_submission", wrap(`{"xqueue_header": ` + goodHeader + `}`), "lacks xqueue_body"},
		{"header object not string", "get_submission", wrap(`{"xqueue_header": {"submission_id": 1}, "xqueue_body": "{}"}`), "xqueue_header is not a JSON string"},
		{"header string not JSON", "get_submission", wrap(`{"xqueue_header": "id=1", "xqueue_body": "{}"}`), "xqueue_header is not a JSON object"},
		{"header lacks key", "get_submission", wrap(`{"xqueue_header": "{\"submission_id\": 1}", "xqueue_body": "{}"}`), "lacks submission_id or submission_key"},
		{"id text", "get_submission", wrap(`{"xqueue_header": "{\"submission_id\": \"abc\", \"submission_key\": \"k\"}", "xqueue_body": "{}"}`), "not a positive integer"},
		{"id zero", "get_submission", wrap(`{"xqueue_header": "{\"submission_id\": 0, \"submission_key\": \"k\"}", "xqueue_body": "{}"}`), "not a positive integer"},
		{"key number", "get_submission", wrap(`{"xqueue_header": "{\"submission_id\": 1, \"submission_key\": 5}", "xqueue_body": "{}"}`), "not a non-empty string"},
		{"body number", "get_submission", wrap(`{"xqueue_header": ` + goodHeader + `, "xqueue_body": 5}`), "xqueue_body is not a JSON string"},
		{"huge reply", "get_submission", `{"return_code": 0, "content": "` + strings.Repeat("x", 10000) + `"}`, "larger than 4096 bytes"},
		{"unexpected 404", "get_queuelen", "", "unexpected HTTP 404"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := xqueuetest.Fault{Endpoint: tc.endpoint, Body: tc.body}
			if tc.body == "" {
				f.Body = " "
			}
			if strings.Contains(tc.name, "404") {
				f.Status = 404
			}
			s.Inject(f)
			var err error
			if tc.endpoint == "get_queuelen" {
				_, err = c.QueueLength(ctx)
			} else {
				_, err = c.Pull(ctx)
			}
			if !errors.Is(err, ErrBadReply) {
				t.Fatalf("got %v, want a permanent ErrBadReply", err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "xqueue "+tc.endpoint+": ") {
				t.Fatalf("error %q should start with the call and mention %q", err, tc.want)
			}
		})
	}

	// Harmless variants are tolerated: numbers as strings, the payload as an object.
	s.Inject(xqueuetest.Fault{Endpoint: "get_queuelen", Body: `{"return_code": "0", "content": "5"}`})
	if n, err := c.QueueLength(ctx); err != nil || n != 5 {
		t.Fatalf("string numbers: %d %v", n, err)
	}
	s.Inject(xqueuetest.Fault{Endpoint: "get_submission", Body: `{"return_code": 0, "content": {"xqueue_header": "{\"submission_id\": \"7\", \"submission_key\": \"k\"}", "xqueue_body": "{\"a\": 1}"}}`})
	sub, err := c.Pull(ctx)
	if err != nil || sub.Header.SubmissionID != 7 || string(sub.Body) != `{"a": 1}` || sub.Files != "" {
		t.Fatalf("object payload: %+v %v", sub, err)
	}
}

func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestInvalidArguments(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, nil)
	ctx := ctxT(t)
	for _, tc := range []struct {
		h    Header
		body string
	}{
		{Header{SubmissionID: 1, SubmissionKey: "k"}, "not json"},
		{Header{SubmissionID: 0, SubmissionKey: "k"}, "{}"},
		{Header{SubmissionID: 1}, "{}"},
	} {
		if err := c.PutResult(ctx, tc.h, []byte(tc.body)); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("PutResult(%+v, %q): %v", tc.h, tc.body, err)
		}
	}
	if st := s.Stats(); st.PutResults != 0 {
		t.Fatal("invalid put_result was sent")
	}
	for _, cfg := range []Config{
		{},
		{BaseURL: "ftp://x", Username: "u", Password: "p"},
		{BaseURL: "http://u:p@x", Username: "u", Password: "p"},
		{BaseURL: "http://x?q=1", Username: "u", Password: "p"},
		{BaseURL: "http://x", Username: "u"},
		{BaseURL: "http://x", Username: "u", Password: "p", BasicAuth: "nocolon"},
	} {
		_, err := New(cfg)
		if !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%+v): %v", cfg, err)
		} else if strings.Contains(err.Error(), "u:p") {
			t.Errorf("New error leaks credentials: %v", err)
		}
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	const (
		password  = "hunter2-xqueue-password"
		basicPass = "nginx-gate-password"
	)
	s := xqueuetest.NewServer(xqueuetest.WithUser("certd", password), xqueuetest.WithBasicAuth("edge", basicPass))
	defer s.Close()
	var buf bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&buf, &mu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := testClient(t, s, func(c *Config) {
		c.Username, c.Password, c.BasicAuth, c.Logger = "certd", password, "edge:"+basicPass, logger
		c.ResultTimeout = 50 * time.Millisecond
	})
	ctx := ctxT(t)
	s.Submit(jobBody)
	sub, err := c.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, ck := range c.hc.Jar.Cookies(c.baseURL) {
		if ck.Name == "sessionid" {
			session = ck.Value
		}
	}
	if session == "" {
		t.Fatal("no session cookie in the jar")
	}
	// Exercise the noisy paths: re-login, retries, failures, timeouts.
	s.DropSessions()
	s.FailNext(2, 503)
	if _, err := c.QueueLength(ctx); err != nil {
		t.Fatal(err)
	}
	s.SetLMSLatency(200 * time.Millisecond)
	errs := []error{c.PutResult(ctx, sub.Header, []byte(`{}`))}
	bad := testClient(t, s, func(c *Config) {
		c.Username, c.Password, c.BasicAuth, c.Logger = "certd", "wrong-"+password, "edge:"+basicPass, logger
	})
	_, err = bad.Pull(ctx)
	errs = append(errs, err)
	if _, err := s.WaitCallbacks(ctx, 1); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	if !strings.Contains(logs, "logged in") || !strings.Contains(logs, "retrying") {
		t.Fatalf("expected login and retry logs, got:\n%s", logs)
	}
	basic64 := base64.StdEncoding.EncodeToString([]byte("edge:" + basicPass))
	for _, secret := range []string{password, basicPass, basic64, session} {
		if strings.Contains(logs, secret) {
			t.Errorf("log output contains a secret %q:\n%s", secret, logs)
		}
		for _, e := range errs {
			if e != nil && strings.Contains(e.Error(), secret) {
				t.Errorf("error %q contains a secret", e)
			}
		}
	}
}

type lockedWriter struct {
	buf *bytes.Buffer
	mu  *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// BenchmarkPullPutResult measures one submit, pull and put_result round
// trip against the stand-in on loopback.
func BenchmarkPullPutResult(b *testing.B) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c, err := New(Config{BaseURL: s.URL(), Username: xqueuetest.DefaultUsername, Password: xqueuetest.DefaultPassword,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	result := []byte(`{"action": "create", "download_uuid": "0123456789abcdef0123456789abcdef"}`)
	b.ReportAllocs()
	for b.Loop() {
		s.Submit(jobBody)
		sub, err := c.Pull(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.PutResult(ctx, sub.Header, result); err != nil {
			b.Fatal(err)
		}
	}
}

// A pull that got no answer may still be running inside xqueue; a second
// pull sent meanwhile would race it (one submission under two keys, or an
// answered one brought back). The client must not repeat it.
func TestPullWithoutAnswerIsNotRepeated(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	s := xqueuetest.NewServer(xqueuetest.WithPullHook(func(ctx context.Context, _ int64) {
		first := false
		once.Do(func() { first = true })
		if !first {
			return
		}
		select { // the first pull stays inside xqueue until released
		case <-release:
		case <-ctx.Done():
		}
	}))
	defer s.Close()
	c := testClient(t, s, func(c *Config) { c.RequestTimeout, c.ResultTimeout = 100*time.Millisecond, 100*time.Millisecond })
	ctx := ctxT(t)
	s.Submit(jobBody)
	s.Submit(jobBody)
	sub, err := c.Pull(ctx)
	if err == nil {
		t.Fatalf("Pull returned submission %d while its first get_submission was still running in xqueue", sub.Header.SubmissionID)
	}
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrQueueEmpty) {
		t.Fatalf("unanswered pull: %v, want ErrUnavailable", err)
	}
	close(release)
	if _, err := s.WaitStats(ctx, func(st xqueuetest.Stats) bool { return st.Pulls == 1 }); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.MaxPullsInFlight != 1 {
		t.Fatalf("stats %+v: pulls overlapped inside xqueue", st)
	}

	// A 504 from a front: xqueue may still be running the pull, too.
	s.Inject(xqueuetest.Fault{Endpoint: "get_submission", Status: http.StatusGatewayTimeout, AfterHandling: true})
	before := s.Stats()
	if _, err := c.Pull(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("pull answered 504: %v, want ErrUnavailable", err)
	}
	if after := s.Stats(); after.Pulls-before.Pulls != 1 {
		t.Fatalf("%d pulls after a 504, want 1 (not repeated)", after.Pulls-before.Pulls)
	}
}

// A put_result redirected to the login page did not reach the view: it is
// sent again once after logging in, and if the new session is refused too
// the error says so without claiming an unknown outcome (nothing was
// posted) and without a third send.
func TestPutResultRedirectedTwiceIsAnAuthError(t *testing.T) {
	s := xqueuetest.NewServer()
	defer s.Close()
	c := testClient(t, s, nil)
	ctx := ctxT(t)
	s.Submit(jobBody)
	sub, err := c.Pull(ctx)
	if err != nil {
		t.Fatal(err)
	}
	login := "/xqueue/login/?next=/xqueue/put_result/"
	s.Inject(xqueuetest.Fault{Endpoint: "put_result", Status: http.StatusFound, Location: login, Count: 2})
	before := s.Stats()
	err = c.PutResult(ctx, sub.Header, []byte(`{}`))
	if !errors.Is(err, ErrAuth) || errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("put_result redirected after re-login: %v, want ErrAuth only", err)
	}
	after := s.Stats()
	if sent := after.FaultsApplied - before.FaultsApplied; sent != 2 || after.PutResults != before.PutResults ||
		after.Logins-before.Logins != 1 || after.Callbacks != before.Callbacks {
		t.Fatalf("stats %+v -> %+v: want 2 sends, one login, nothing reaching the view", before, after)
	}
}
