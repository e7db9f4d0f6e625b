package xqueuetest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// raw is a bare HTTP client: cookie jar, no redirect following, so tests
// see exactly what xqueue's wire protocol says.
type raw struct {
	t  *testing.T
	s  *Server
	hc *http.Client
}

func newRaw(t *testing.T, s *Server) *raw {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &raw{t: t, s: s, hc: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

func (r *raw) do(method, path string, form url.Values) (*http.Response, string) {
	r.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, r.s.URL()+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp, string(b)
}

// call expects a 200 xqueue reply and returns return_code and content.
func (r *raw) call(method, path string, form url.Values) (int, any) {
	r.t.Helper()
	resp, body := r.do(method, path, form)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("%s %s: HTTP %d, want 200: %s", method, path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		r.t.Errorf("%s %s: Content-Type %q, want Django's text/html; charset=utf-8", method, path, ct)
	}
	var env struct {
		ReturnCode *int `json:"return_code"`
		Content    any  `json:"content"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil || env.ReturnCode == nil {
		r.t.Fatalf("%s %s: not an xqueue reply: %q", method, path, body)
	}
	return *env.ReturnCode, env.Content
}

func (r *raw) login() {
	r.t.Helper()
	code, content := r.call("POST", "/xqueue/login/", url.Values{"username": {DefaultUsername}, "password": {DefaultPassword}})
	if code != 0 || content != "Logged in" {
		r.t.Fatalf("login: %d %v", code, content)
	}
}

type pulled struct {
	id          int64
	key         string
	body, files string
}

// pull expects a submission and decodes all three layers.
func (r *raw) pull() pulled {
	r.t.Helper()
	code, content := r.call("GET", "/xqueue/get_submission/?queue_name=certificates", nil)
	if code != 0 {
		r.t.Fatalf("get_submission: %d %v", code, content)
	}
	s, ok := content.(string)
	if !ok {
		r.t.Fatalf("get_submission content is %T, want a JSON string", content)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(s), &payload); err != nil {
		r.t.Fatalf("payload: %v", err)
	}
	hs, _ := payload["xqueue_header"].(string)
	var h struct {
		ID  int64  `json:"submission_id"`
		Key string `json:"submission_key"`
	}
	if err := json.Unmarshal([]byte(hs), &h); err != nil {
		r.t.Fatalf("header %q: %v", hs, err)
	}
	body, ok1 := payload["xqueue_body"].(string)
	files, ok2 := payload["xqueue_files"].(string)
	if !ok1 || !ok2 {
		r.t.Fatalf("payload fields are not strings: %v", payload)
	}
	return pulled{id: h.ID, key: h.Key, body: body, files: files}
}

func (r *raw) queueLen() float64 {
	r.t.Helper()
	code, content := r.call("GET", "/xqueue/get_queuelen/?queue_name=certificates", nil)
	n, ok := content.(float64)
	if code != 0 || !ok {
		r.t.Fatalf("get_queuelen: %d %v (%T)", code, content, content)
	}
	return n
}

func (r *raw) put(id any, key any, body string) (int, any) {
	r.t.Helper()
	h, _ := json.Marshal(map[string]any{"submission_id": id, "submission_key": key})
	return r.call("POST", "/xqueue/put_result/", url.Values{"xqueue_header": {string(h)}, "xqueue_body": {body}})
}

var md5hex = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestRepliesAreDjangoHTMLWithPythonJSON(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := newRaw(t, s)
	resp, body := r.do("GET", "/xqueue/status/", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status: HTTP %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if body != `{"return_code": 0, "content": "OK"}` {
		t.Fatalf("status body %q, want Python's json.dumps layout", body)
	}
	if _, body := r.do("GET", "/xqueue/logout/", nil); body != `{"return_code": 0, "content": "Goodbye"}` {
		t.Fatalf("logout body %q", body)
	}
}

func TestLogin(t *testing.T) {
	s := NewServer(WithUser("alice", "pw1"))
	defer s.Close()
	r := newRaw(t, s)
	cases := []struct {
		method string
		form   url.Values
		code   int
		want   string
	}{
		{"GET", nil, 1, "login_required"},
		{"POST", url.Values{"username": {"alice"}, "password": {"nope"}}, 1, "Incorrect login credentials"},
		{"POST", url.Values{"username": {"bob"}, "password": {"pw1"}}, 1, "Incorrect login credentials"},
		{"POST", url.Values{"username": {DefaultUsername}, "password": {DefaultPassword}}, 1, "Incorrect login credentials"},
		{"POST", url.Values{"username": {"alice"}}, 1, "Insufficient login info"},
		{"POST", url.Values{}, 1, "Insufficient login info"},
	}
	for _, c := range cases {
		code, content := r.call(c.method, "/xqueue/login/", c.form)
		if code != c.code || content != c.want {
			t.Errorf("%s login %v: got %d %v, want %d %q", c.method, c.form, code, content, c.code, c.want)
		}
	}
	// A password without a username: p['username'] raises in xqueue.
	if resp, _ := r.do("POST", "/xqueue/login/", url.Values{"password": {"pw1"}}); resp.StatusCode != 500 {
		t.Errorf("login without username: HTTP %d, want 500", resp.StatusCode)
	}
	resp, body := r.do("POST", "/xqueue/login/", url.Values{"username": {"alice"}, "password": {"pw1"}})
	if body != `{"return_code": 0, "content": "Logged in"}` {
		t.Fatalf("login body %q", body)
	}
	names := map[string]bool{}
	for _, c := range resp.Cookies() {
		names[c.Name] = c.Value != ""
	}
	if !names["sessionid"] || !names["csrftoken"] {
		t.Fatalf("login cookies %v, want sessionid and csrftoken", resp.Cookies())
	}
	if st := s.Stats(); st.Logins != 1 || st.FailedLogins != 6 {
		t.Fatalf("stats %+v, want 1 login and 6 failed", st)
	}
}

func TestNoSessionRedirectsToRelativeLogin(t *testing.T) {
	s := NewServer()
	defer s.Close()
	s.Submit(`{"action": "create"}`)
	r := newRaw(t, s)
	cases := []struct{ method, path, next string }{
		{"GET", "/xqueue/get_queuelen/?queue_name=certificates", "/xqueue/get_queuelen/%3Fqueue_name%3Dcertificates"},
		{"GET", "/xqueue/get_submission/?queue_name=certificates", "/xqueue/get_submission/%3Fqueue_name%3Dcertificates"},
		{"POST", "/xqueue/put_result/", "/xqueue/put_result/"},
	}
	for _, c := range cases {
		var form url.Values
		if c.method == "POST" {
			form = url.Values{"xqueue_header": {`{"submission_id": 1, "submission_key": "x"}`}, "xqueue_body": {"{}"}}
		}
		resp, _ := r.do(c.method, c.path, form)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s %s without session: HTTP %d, want 302", c.method, c.path, resp.StatusCode)
		}
		if loc := resp.Header.Get("Location"); loc != "/xqueue/login/?next="+c.next {
			t.Errorf("%s %s: Location %q", c.method, c.path, loc)
		}
		// Following the redirect ends at login_required.
		if code, content := r.call("GET", resp.Header.Get("Location"), nil); code != 1 || content != "login_required" {
			t.Errorf("following redirect: %d %v", code, content)
		}
	}
	if sub, _ := s.Submission(1); sub.Pulls != 0 {
		t.Fatal("a refused pull leased the submission")
	}
	if st := s.Stats(); st.Redirects != 3 {
		t.Fatalf("Redirects = %d, want 3", st.Redirects)
	}

	// Sessions expire: DropSessions brings the redirect back.
	r.login()
	r.queueLen()
	s.DropSessions()
	if resp, _ := r.do("GET", "/xqueue/get_queuelen/?queue_name=certificates", nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("after DropSessions: HTTP %d, want 302", resp.StatusCode)
	}
	r.login()
	r.queueLen()
	// Logout ends the session too.
	r.call("GET", "/xqueue/logout/", nil)
	if resp, _ := r.do("GET", "/xqueue/get_queuelen/?queue_name=certificates", nil); resp.StatusCode != http.StatusFound {
		t.Fatalf("after logout: HTTP %d, want 302", resp.StatusCode)
	}
}

func TestSlashCSRFAndNotFound(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := newRaw(t, s)
	r.login()
	resp, _ := r.do("GET", "/xqueue/get_queuelen?queue_name=certificates", nil)
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/xqueue/get_queuelen/?queue_name=certificates" {
		t.Errorf("no trailing slash: HTTP %d Location %q, want 301 to the slashed path", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = r.do("POST", "/xqueue/put_result", url.Values{"xqueue_header": {"{}"}, "xqueue_body": {"{}"}})
	if resp.StatusCode != http.StatusMovedPermanently {
		t.Errorf("POST without slash: HTTP %d, want 301", resp.StatusCode)
	}
	for _, p := range []string{"/xqueue/get_queuelen/?queue_name=certificates", "/xqueue/get_submission/?queue_name=certificates"} {
		resp, body := r.do("POST", p, url.Values{"queue_name": {"certificates"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("POST %s: HTTP %d, want the 403 CSRF page", p, resp.StatusCode)
		}
	}
	if resp, _ := r.do("GET", "/xqueue/nope/", nil); resp.StatusCode != 404 {
		t.Errorf("unknown path: HTTP %d, want 404", resp.StatusCode)
	}
	if code, content := r.call("GET", "/xqueue/put_result/", nil); code != 1 || content != "'put_result' must use HTTP POST" {
		t.Errorf("GET put_result: %d %v", code, content)
	}
}

func TestBasicAuthFront(t *testing.T) {
	s := NewServer(WithBasicAuth("edge", "gate"))
	defer s.Close()
	r := newRaw(t, s)
	resp, _ := r.do("GET", "/xqueue/status/", nil)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("without basic auth: HTTP %d, want 401 with a challenge", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", s.URL()+"/xqueue/status/", nil)
	req.SetBasicAuth("edge", "wrong")
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong basic auth: HTTP %d, want 401", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", s.URL()+"/xqueue/status/", nil)
	req.SetBasicAuth("edge", "gate")
	resp, err = r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("right basic auth: HTTP %d, want 200", resp.StatusCode)
	}
	if st := s.Stats(); st.Unauthorized != 2 {
		t.Fatalf("Unauthorized = %d, want 2", st.Unauthorized)
	}
}

func TestLeaseReofferKeysAndRetirement(t *testing.T) {
	s := NewServer(WithLease(time.Hour))
	defer s.Close()
	r := newRaw(t, s)
	r.login()
	body1 := `{"action": "create", "username": "jdoe", "name": "Zoë <Ünïcode> & \"quotes\" 🎓"}`
	id1 := s.Submit(body1)
	id2 := s.Submit(`{"action": "remove"}`)
	if n := r.queueLen(); n != 2 {
		t.Fatalf("queuelen %v, want 2", n)
	}
	p1 := r.pull()
	if p1.id != id1 || p1.body != body1 || p1.files != "{}" || !md5hex.MatchString(p1.key) {
		t.Fatalf("first pull %+v, want id %d, the LMS body verbatim, files {}, an md5 key", p1, id1)
	}
	if n := r.queueLen(); n != 1 {
		t.Fatalf("queuelen with one leased: %v, want 1", n)
	}
	if p := r.pull(); p.id != id2 {
		t.Fatalf("second pull got %d, want %d (arrival order)", p.id, id2)
	}
	if n := r.queueLen(); n != 0 {
		t.Fatalf("queuelen with all leased: %v, want 0", n)
	}
	if code, content := r.call("GET", "/xqueue/get_submission/?queue_name=certificates", nil); code != 1 || content != "Queue 'certificates' is empty" {
		t.Fatalf("all leased: %d %v, want the empty answer", code, content)
	}
	if sub, _ := s.Submission(id1); !sub.Leased || sub.Key != p1.key {
		t.Fatalf("submission view %+v", sub)
	}

	// The lease ends (checked against the real clock): same id, new key.
	s.SetLease(time.Nanosecond)
	if n := r.queueLen(); n != 2 {
		t.Fatalf("queuelen after the leases ended: %v, want 2", n)
	}
	p1b := r.pull()
	if p1b.id != id1 || p1b.key == p1.key || !md5hex.MatchString(p1b.key) {
		t.Fatalf("re-offer %+v, want id %d with a new key (old %s)", p1b, id1, p1.key)
	}
	s.SetLease(time.Hour)
	if code, content := r.put(id1, p1.key, `{"a": 1}`); code != 1 || content != "Incorrect key for submission" {
		t.Fatalf("old key: %d %v", code, content)
	}
	if s.CallbackCount(id1) != 0 {
		t.Fatal("a refused put_result reached the LMS")
	}
	if code, content := r.put(id1, p1b.key, `{"a": 1}`); code != 0 || content != "" {
		t.Fatalf("new key: %d %v", code, content)
	}
	sub, _ := s.Submission(id1)
	if !sub.Retired || sub.Callbacks != 1 || sub.Pulls != 2 {
		t.Fatalf("after accepted put_result: %+v", sub)
	}
	// Retired: never offered again, even after the lease.
	s.ExpireLeases()
	p := r.pull()
	if p.id != id2 {
		t.Fatalf("after retirement pulled %d, want %d", p.id, id2)
	}
	// A second put_result with the current key is accepted and calls the LMS again.
	if code, _ := r.put(id1, p1b.key, `{"a": 2}`); code != 0 {
		t.Fatalf("duplicate put_result refused: %v", code)
	}
	cbs := s.CallbacksFor(id1)
	if len(cbs) != 2 || cbs[0].Body != `{"a": 1}` || cbs[1].Body != `{"a": 2}` || cbs[1].Key != p1b.key {
		t.Fatalf("callbacks %+v, want the duplicate", cbs)
	}
	var lmsHeader map[string]string
	if err := json.Unmarshal([]byte(cbs[0].Header), &lmsHeader); err != nil ||
		lmsHeader["queue_name"] != "certificates" || lmsHeader["lms_key"] != cbs[0].LMSKey ||
		lmsHeader["lms_callback_url"] != DefaultLMSBaseURL+"/update_certificate?key="+cbs[0].LMSKey {
		t.Fatalf("callback header %q (%v)", cbs[0].Header, err)
	}
	var got map[string]int
	if err := cbs[1].Decode(&got); err != nil || got["a"] != 2 {
		t.Fatalf("Decode: %v %v", got, err)
	}
	if len(s.Retired()) != 1 || len(s.Pending()) != 1 {
		t.Fatalf("Retired %d Pending %d", len(s.Retired()), len(s.Pending()))
	}
}

func TestPutResultValidation(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := newRaw(t, s)
	r.login()
	id := s.Submit(`{"action": "create"}`)
	// Never pulled: there is no key yet.
	if code, content := r.put(id, "", "{}"); code != 1 || content != "Incorrect key for submission" {
		t.Fatalf("unpulled: %d %v", code, content)
	}
	p := r.pull()
	for name, form := range map[string]url.Values{
		"no body":           {"xqueue_header": {`{"submission_id": 1, "submission_key": "k"}`}},
		"no header":         {"xqueue_body": {"{}"}},
		"header not JSON":   {"xqueue_header": {"nope"}, "xqueue_body": {"{}"}},
		"header not object": {"xqueue_header": {"[1]"}, "xqueue_body": {"{}"}},
		"header lacks key":  {"xqueue_header": {`{"submission_id": 1}`}, "xqueue_body": {"{}"}},
		"header lacks id":   {"xqueue_header": {`{"submission_key": "k"}`}, "xqueue_body": {"{}"}},
		"header JSON null":  {"xqueue_header": {"null"}, "xqueue_body": {"{}"}},
	} {
		if code, content := r.call("POST", "/xqueue/put_result/", form); code != 1 || content != "Incorrect reply format" {
			t.Errorf("%s: %d %v", name, code, content)
		}
	}
	// A JSON request body is not parsed by Django.
	req, _ := http.NewRequest("POST", s.URL()+"/xqueue/put_result/", strings.NewReader(`{"xqueue_header": "{}", "xqueue_body": "{}"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"return_code": 1, "content": "Incorrect reply format"}` {
		t.Errorf("JSON body: %s", b)
	}
	if code, content := r.put(999, p.key, "{}"); code != 1 || content != "Submission does not exist" {
		t.Errorf("nonexistent: %d %v", code, content)
	}
	if code, content := r.put(id, 12345, "{}"); code != 1 || content != "Incorrect key for submission" {
		t.Errorf("numeric key: %d %v", code, content)
	}
	for _, bad := range []any{"abc", nil, []int{1}, "1.5"} {
		h, _ := json.Marshal(map[string]any{"submission_id": bad, "submission_key": p.key})
		resp, _ := r.do("POST", "/xqueue/put_result/", url.Values{"xqueue_header": {string(h)}, "xqueue_body": {"{}"}})
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("submission_id %v: HTTP %d, want 500", bad, resp.StatusCode)
		}
	}
	if s.CallbackCount(id) != 0 {
		t.Fatal("invalid put_results reached the LMS")
	}
	// Python's int() accepts a numeric string.
	if code, content := r.put(" 1 ", p.key, `{"ok": true}`); code != 0 {
		t.Fatalf("string id: %d %v", code, content)
	}
	if s.CallbackCount(id) != 1 {
		t.Fatal("no callback")
	}
	if st := s.Stats(); st.Accepted != 1 || st.Callbacks != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestQueueNames(t *testing.T) {
	s := NewServer(WithQueues("certificates", "graders"))
	defer s.Close()
	r := newRaw(t, s)
	r.login()
	if code, content := r.call("GET", "/xqueue/get_submission/?queue_name=nope", nil); code != 1 || content != "Queue 'nope' not found" {
		t.Errorf("unknown queue pull: %d %v", code, content)
	}
	if code, content := r.call("GET", "/xqueue/get_queuelen/?queue_name=nope", nil); code != 1 || content != "Valid queue names are: certificates, graders" {
		t.Errorf("unknown queue len: %d %v", code, content)
	}
	if code, content := r.call("GET", "/xqueue/get_submission/", nil); code != 1 || content != "'get_submission' must provide parameter 'queue_name'" {
		t.Errorf("no queue_name: %d %v", code, content)
	}
	if _, err := s.SubmitTo("graders", "{}"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubmitTo("nope", "{}"); err == nil || err.Error() != "Queue 'nope' not found" {
		t.Fatalf("SubmitTo unknown queue: %v", err)
	}
	if n := r.queueLen(); n != 0 {
		t.Fatalf("certificates length %v, want 0 (job went to graders)", n)
	}
	if code, content := r.call("GET", "/xqueue/get_queuelen/?queue_name=graders", nil); code != 0 || content != float64(1) {
		t.Fatalf("graders length %d %v", code, content)
	}
}

func TestSubmitRawAndLMSInterface(t *testing.T) {
	s := NewServer()
	defer s.Close()
	hdr := `{"lms_callback_url": "https://lms/update_certificate?key=abc", "lms_key": "abc", "queue_name": "certificates"}`
	a, err := s.SubmitRaw(hdr, `{"n": 1}`)
	if err != nil {
		t.Fatal(err)
	}
	// Same callback URL: xqueue retires the earlier one.
	b, err := s.SubmitRaw(hdr, `{"n": 2}`)
	if err != nil {
		t.Fatal(err)
	}
	if sa, _ := s.Submission(a); !sa.Retired || sa.Callbacks != 0 {
		t.Fatalf("earlier submission %+v, want retired without callback", sa)
	}
	if _, err := s.SubmitRaw(`{"lms_key": "x"}`, "{}"); err == nil {
		t.Fatal("header without callback URL accepted")
	}
	r := newRaw(t, s)
	r.login()
	code, content := r.call("POST", "/xqueue/submit/", url.Values{
		"xqueue_header": {`{"lms_callback_url": "https://lms/cb?key=z", "lms_key": "z", "queue_name": "certificates"}`},
		"xqueue_body":   {`{"n": 3}`},
	})
	if code != 0 || content != "2" {
		t.Fatalf("submit: %d %v, want the queue length as a string", code, content)
	}
	if p := r.pull(); p.id != b || p.body != `{"n": 2}` {
		t.Fatalf("pulled %+v, want %d", p, b)
	}
}

func TestLMSLatencyIsSynchronousAndSurvivesClientTimeout(t *testing.T) {
	s := NewServer(WithLMSLatency(300 * time.Millisecond))
	defer s.Close()
	r := newRaw(t, s)
	r.login()
	id := s.Submit("{}")
	p := r.pull()
	r.hc.Timeout = 50 * time.Millisecond
	h, _ := json.Marshal(map[string]any{"submission_id": id, "submission_key": p.key})
	_, err := r.hc.PostForm(s.URL()+"/xqueue/put_result/", url.Values{"xqueue_header": {string(h)}, "xqueue_body": {`{"x": 1}`}})
	if err == nil {
		t.Fatal("put_result answered before the LMS callback finished")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cbs, err := s.WaitCallbacks(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if cbs[0].SubmissionID != id || cbs[0].Body != `{"x": 1}` {
		t.Fatalf("callback %+v", cbs[0])
	}
	if err := s.WaitRetired(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestFaults(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := newRaw(t, s)
	r.login()
	s.FailNext(2, http.StatusServiceUnavailable)
	for i := 0; i < 2; i++ {
		if resp, _ := r.do("GET", "/xqueue/get_queuelen/?queue_name=certificates", nil); resp.StatusCode != 503 {
			t.Fatalf("fault %d: HTTP %d", i, resp.StatusCode)
		}
	}
	r.queueLen()
	if st := s.Stats(); st.FaultsApplied != 2 || st.QueueLens != 1 {
		t.Fatalf("stats %+v", st)
	}

	// Drop the connection of a pull before handling: nothing leased.
	id := s.Submit("{}")
	s.Inject(Fault{Endpoint: "get_submission", Drop: true})
	// A fresh connection: Go's transport silently retries an idempotent
	// request whose reused connection drops.
	fresh := &http.Client{Jar: r.hc.Jar, Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := fresh.Get(s.URL() + "/xqueue/get_submission/?queue_name=certificates"); err == nil {
		t.Fatal("dropped connection gave an answer")
	}
	if sub, _ := s.Submission(id); sub.Pulls != 0 {
		t.Fatal("dropped-before-handling pull leased the submission")
	}
	p := r.pull()

	// A put_result fully handled (LMS called) whose answer is a 504.
	s.Inject(Fault{Endpoint: "put_result", Status: http.StatusGatewayTimeout, AfterHandling: true})
	h, _ := json.Marshal(map[string]any{"submission_id": id, "submission_key": p.key})
	resp, _ := r.do("POST", "/xqueue/put_result/", url.Values{"xqueue_header": {string(h)}, "xqueue_body": {"{}"}})
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("HTTP %d, want 504", resp.StatusCode)
	}
	if s.CallbackCount(id) != 1 {
		t.Fatal("after-handling fault: the LMS callback should have happened")
	}
	// Endpoint-specific faults leave other endpoints alone.
	s.Inject(Fault{Endpoint: "put_result", Status: 500})
	r.call("GET", "/xqueue/status/", nil)
	if resp, _ := r.do("POST", "/xqueue/put_result/", url.Values{"xqueue_header": {string(h)}, "xqueue_body": {"{}"}}); resp.StatusCode != 500 {
		t.Fatalf("HTTP %d, want 500", resp.StatusCode)
	}
}

func TestFailLMSKeepsSubmissionUnretired(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := newRaw(t, s)
	r.login()
	id := s.Submit("{}")
	p := r.pull()
	s.FailLMS(1)
	if code, content := r.put(id, p.key, "{}"); code != 0 || content != "" {
		t.Fatalf("put_result with LMS down: %d %v, want success as xqueue answers", code, content)
	}
	sub, _ := s.Submission(id)
	if sub.Retired || sub.Callbacks != 0 || s.Stats().LMSFailures != 1 {
		t.Fatalf("%+v", sub)
	}
	s.ExpireLeases()
	if p2 := r.pull(); p2.id != id || p2.key == p.key {
		t.Fatalf("re-offer %+v", p2)
	}
}

func TestReoffer(t *testing.T) {
	s := NewServer()
	defer s.Close()
	r := newRaw(t, s)
	r.login()
	id := s.Submit("{}")
	p := r.pull()
	r.put(id, p.key, "{}")
	if err := s.Reoffer(id); err != nil {
		t.Fatal(err)
	}
	p2 := r.pull()
	if p2.id != id || p2.key == p.key {
		t.Fatalf("reoffered %+v", p2)
	}
	if err := s.Reoffer(77); err == nil {
		t.Fatal("Reoffer of unknown id succeeded")
	}
}

func TestWaitEndsWithContextAndClose(t *testing.T) {
	s := NewServer()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WaitCallbacks(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled wait: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.WaitStats(context.Background(), func(st Stats) bool { return st.Pulls > 0 })
		done <- err
	}()
	s.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("wait after Close: %v", err)
	}
}

func TestPyStringMatchesPython(t *testing.T) {
	cases := map[string]string{
		"OK":              `"OK"`,
		"Zoë":             `"Zo\u00eb"`,
		"🎓":               `"\ud83c\udf93"`,
		"<a&b>":           `"<a&b>"`,
		"q\"b\\n\n\t\x01": `"q\"b\\n\n\t\u0001"`,
		"\x7f":            `"\u007f"`, // Python escapes DEL too (outside ' '..'~')
	}
	for in, want := range cases {
		if got := pyString(in); got != want {
			t.Errorf("pyString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(pyString(in)), &back); err != nil || back != in {
			t.Errorf("round trip %q: %q %v", in, back, err)
		}
	}
}
