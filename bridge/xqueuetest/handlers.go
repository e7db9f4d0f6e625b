package xqueuetest

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const prefix = "/xqueue/"

// endpoints maps each view to whether it is CSRF-exempt (POST allowed) and
// whether it needs a session (@login_required).
var endpoints = map[string]struct{ csrfExempt, loginRequired bool }{
	"login":          {csrfExempt: true},
	"logout":         {},
	"status":         {},
	"get_queuelen":   {loginRequired: true},
	"get_submission": {loginRequired: true},
	"put_result":     {csrfExempt: true, loginRequired: true},
	"submit":         {csrfExempt: true, loginRequired: true},
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.stats.Requests++
	s.notify()
	s.mu.Unlock()

	// nginx basic auth in front of everything.
	if s.basicAuth {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(s.basicUser)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(s.basicPass)) != 1 {
			s.count(func(st *Stats) { st.Unauthorized++ })
			s.logRequest(r, http.StatusUnauthorized)
			w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, "<html>\r\n<head><title>401 Authorization Required</title></head>\r\n<body>\r\n<center><h1>401 Authorization Required</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
			return
		}
	}

	name, ok := strings.CutPrefix(r.URL.Path, prefix)
	if !ok {
		s.djangoError(w, r, http.StatusNotFound)
		return
	}
	if _, known := endpoints[name]; known {
		// CommonMiddleware APPEND_SLASH: 301 to the slashed path.
		loc := r.URL.Path + "/"
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		s.logRequest(r, http.StatusMovedPermanently)
		w.Header().Set("Location", loc)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	name, ok = strings.CutSuffix(name, "/")
	ep, known := endpoints[name]
	if !ok || !known {
		s.djangoError(w, r, http.StatusNotFound)
		return
	}

	fault := s.takeFault(name)
	if fault != nil && !fault.AfterHandling {
		s.applyFault(w, r, fault)
		return
	}
	if fault != nil {
		rec := httptest.NewRecorder()
		s.handle(rec, r, name, ep.csrfExempt, ep.loginRequired)
		s.applyFault(w, r, fault)
		return
	}
	s.handle(w, r, name, ep.csrfExempt, ep.loginRequired)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request, name string, csrfExempt, loginRequired bool) {
	// CsrfViewMiddleware runs before the view: a POST to a view that is not
	// csrf_exempt is refused whether or not the client is logged in.
	if r.Method == http.MethodPost && !csrfExempt {
		s.logRequest(r, http.StatusForbidden)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "\n<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n  <meta http-equiv=\"content-type\" content=\"text/html; charset=utf-8\">\n  <meta name=\"robots\" content=\"NONE,NOARCHIVE\">\n  <title>403 Forbidden</title>\n</head>\n<body>\n  <div id=\"summary\">\n    <h1>Forbidden <span>(403)</span></h1>\n    <p>CSRF verification failed. Request aborted.</p>\n  </div>\n</body>\n</html>\n")
		return
	}
	user := s.sessionUser(r)
	if loginRequired && user == "" {
		s.count(func(st *Stats) { st.Redirects++ })
		next := url.QueryEscape(r.URL.RequestURI())
		next = strings.ReplaceAll(next, "%2F", "/")
		s.logRequest(r, http.StatusFound)
		w.Header().Set("Location", "/xqueue/login/?next="+next)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusFound)
		return
	}
	switch name {
	case "login":
		s.login(w, r)
	case "logout":
		s.logout(w, r)
	case "status":
		s.answer(w, r, reply(true, pyString("OK")))
	case "get_queuelen":
		s.getQueueLen(w, r)
	case "get_submission":
		s.getSubmission(w, r)
	case "put_result":
		s.putResult(w, r)
	case "submit":
		s.lmsSubmit(w, r)
	}
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
	s.notify()
}

func (s *Server) logRequest(r *http.Request, status int) {
	if s.logf != nil {
		s.logf("xqueuetest: %s %s -> %d", r.Method, r.URL.RequestURI(), status)
	}
}

// answer writes an xqueue reply: always 200 text/html, as Django does.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, body string) {
	if s.logf != nil {
		s.logf("xqueuetest: %s %s -> 200 %s", r.Method, r.URL.RequestURI(), body)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Vary", "Cookie")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}

func (s *Server) djangoError(w http.ResponseWriter, r *http.Request, status int) {
	s.logRequest(r, status)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	switch status {
	case http.StatusNotFound:
		_, _ = io.WriteString(w, "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n</body>\n</html>\n")
	default:
		_, _ = io.WriteString(w, "\n<!doctype html>\n<html lang=\"en\">\n<head>\n  <title>Server Error (500)</title>\n</head>\n<body>\n  <h1>Server Error (500)</h1><p></p>\n</body>\n</html>\n")
	}
}

func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault) {
	if f.Drop {
		s.logRequest(r, 0)
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("xqueuetest: response writer cannot hijack")
		}
		conn, buf, err := hj.Hijack()
		if err == nil {
			_ = buf.Flush()
			_ = conn.Close()
		}
		return
	}
	s.logRequest(r, f.Status)
	if f.Location != "" {
		w.Header().Set("Location", f.Location)
	}
	if f.Body != "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(f.Status)
		if f.Trickle <= 0 {
			_, _ = io.WriteString(w, f.Body)
			return
		}
		rc := http.NewResponseController(w)
		t := time.NewTicker(f.Trickle)
		defer t.Stop()
		for i := 0; i < len(f.Body); i++ {
			if _, err := io.WriteString(w, f.Body[i:i+1]); err != nil || rc.Flush() != nil {
				return
			}
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			case <-s.closed:
				return
			}
		}
		return
	}
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(f.Status)
	_, _ = fmt.Fprintf(w, "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d %s</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n",
		f.Status, http.StatusText(f.Status), f.Status, http.StatusText(f.Status))
}

func (s *Server) sessionUser(r *http.Request) string {
	c, err := r.Cookie("sessionid")
	if err != nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[c.Value]
}

// login is xqueue's log_in view. Its check `'username' and 'password' in p`
// only tests for the password: without a username, p['username'] raises and
// Django answers 500.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.answer(w, r, reply(false, pyString("login_required")))
		return
	}
	_ = r.ParseMultipartForm(10 << 20)
	if _, ok := r.PostForm["password"]; !ok {
		s.count(func(st *Stats) { st.FailedLogins++ })
		s.answer(w, r, reply(false, pyString("Insufficient login info")))
		return
	}
	username, hasUser := r.PostForm["username"]
	if !hasUser {
		// p['username'] raises MultiValueDictKeyError: a 500 page.
		s.count(func(st *Stats) { st.FailedLogins++ })
		s.djangoError(w, r, http.StatusInternalServerError)
		return
	}
	user := username[len(username)-1]
	password := last(r.PostForm["password"])
	want, exists := s.users[user]
	if !exists || subtle.ConstantTimeCompare([]byte(want), []byte(password)) != 1 {
		s.count(func(st *Stats) { st.FailedLogins++ })
		s.answer(w, r, reply(false, pyString("Incorrect login credentials")))
		return
	}
	sid := randomToken(32)
	s.mu.Lock()
	if old, err := r.Cookie("sessionid"); err == nil {
		delete(s.sessions, old.Value) // login cycles the session key
	}
	s.sessions[sid] = user
	s.stats.Logins++
	s.notify()
	s.mu.Unlock()
	exp := time.Now().Add(14 * 24 * time.Hour)
	http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: randomToken(64), Path: "/",
		Expires: time.Now().Add(365 * 24 * time.Hour), MaxAge: 31449600, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: sid, Path: "/", Expires: exp,
		MaxAge: 1209600, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	s.answer(w, r, reply(true, pyString("Logged in")))
}

// last is Django's QueryDict.__getitem__: the last value of a field.
func last(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("sessionid"); err == nil {
		s.mu.Lock()
		delete(s.sessions, c.Value)
		s.stats.Logouts++
		s.notify()
		s.mu.Unlock()
		http.SetCookie(w, &http.Cookie{Name: "sessionid", Value: "", Path: "/", MaxAge: -1,
			Expires: time.Unix(0, 0), SameSite: http.SameSiteLaxMode})
	}
	s.answer(w, r, reply(true, pyString("Goodbye")))
}

func (s *Server) getQueueLen(w http.ResponseWriter, r *http.Request) {
	q, ok := r.URL.Query()["queue_name"]
	if !ok {
		s.answer(w, r, reply(false, pyString("'get_queuelen' must provide parameter 'queue_name'")))
		return
	}
	queue := q[len(q)-1] // Django's QueryDict returns the last value
	s.mu.Lock()
	s.stats.QueueLens++
	s.notify()
	known := false
	for _, name := range s.queues {
		known = known || name == queue
	}
	n := s.queueLenLocked(queue)
	s.mu.Unlock()
	if !known {
		s.answer(w, r, reply(false, pyString("Valid queue names are: "+strings.Join(s.queues, ", "))))
		return
	}
	s.answer(w, r, reply(true, strconv.Itoa(n)))
}

func (s *Server) getSubmission(w http.ResponseWriter, r *http.Request) {
	q, ok := r.URL.Query()["queue_name"]
	if !ok {
		s.answer(w, r, reply(false, pyString("'get_submission' must provide parameter 'queue_name'")))
		return
	}
	queue := q[len(q)-1]
	known := false
	for _, name := range s.queues {
		known = known || name == queue
	}
	if !known {
		s.answer(w, r, reply(false, pyString(fmt.Sprintf("Queue '%s' not found", queue))))
		return
	}
	s.mu.Lock()
	s.pullsNow++
	s.stats.MaxPullsInFlight = max(s.stats.MaxPullsInFlight, s.pullsNow)
	s.notify()
	s.mu.Unlock()
	sub, ok := s.pull(queue)
	s.mu.Lock()
	s.pullsNow-- // the database work is done; writing the answer does not race
	s.notify()
	s.mu.Unlock()
	if !ok {
		s.answer(w, r, reply(false, pyString(fmt.Sprintf("Queue '%s' is empty", queue))))
		return
	}
	header := pyObject("submission_id", strconv.FormatInt(sub.id, 10), "submission_key", pyString(sub.pullKey))
	payload := pyObject(
		"xqueue_header", pyString(header),
		"xqueue_body", pyString(sub.body),
		"xqueue_files", pyString(sub.files))
	s.answer(w, r, reply(true, pyString(payload)))
}

// pull is get_submission's database work. Like xqueue it reads the oldest
// unleased row without a lock (order_by('arrival_time').first()), stamps
// pull_time and a new pullkey on that copy, and saves the whole row back.
// Pulls that overlap read the same row and each hand it out under its own
// key (the last save's key is the one put_result accepts), and a save that
// lands after an accepted put_result writes retired=False back. The save
// waits for a put_result holding the row (select_for_update) to commit, as
// an UPDATE does. It returns a copy of the row as this pull saved it.
func (s *Server) pull(queue string) (submission, bool) {
	s.mu.Lock()
	now := s.now()
	var sub *submission
	for _, c := range s.subs { // order_by('arrival_time').first()
		if c.queue == queue && s.available(c, now) {
			sub = c
			break
		}
	}
	if sub == nil {
		s.stats.EmptyPulls++
		s.notify()
		s.mu.Unlock()
		return submission{}, false
	}
	read := *sub // the model instance: a copy of the row
	read.pullTime = now
	read.pullKey = newKey(now.String() + strconv.FormatInt(sub.id, 10))
	read.pulls++
	if s.atomicPulls {
		s.save(sub, &read)
		s.mu.Unlock()
		return read, true
	}
	delay, hook := s.pullDelay, s.pullHook
	s.mu.Unlock()

	// The race window between the SELECT and the UPDATE.
	if hook != nil {
		hook(s.ctx, sub.id)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.closed:
			t.Stop()
		}
	}
	// UPDATE waits for a row lock held by put_result.
	select {
	case sub.row <- struct{}{}:
		defer func() { <-sub.row }()
	case <-s.closed:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.save(sub, &read)
	return read, true
}

// save writes the pulled copy back over the row (Django's save() of every
// field); the caller holds s.mu.
func (s *Server) save(sub, read *submission) {
	if sub.pullKey != "" && sub.pulls >= read.pulls {
		s.stats.LostLeases++ // another pull saved this row since we read it
	}
	if sub.retired && !read.retired {
		s.stats.Unretired++
	}
	sub.pullTime, sub.pullKey, sub.pulls, sub.retired = read.pullTime, read.pullKey, read.pulls, read.retired
	s.stats.Pulls++
	s.notify()
}

// pyInt converts a decoded JSON value as Python's int() does, reporting
// false where int() raises (which makes xqueue answer 500).
func pyInt(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return 0, false
		}
		return int64(x), true
	case bool:
		if x {
			return 1, true
		}
		return 0, true
	case string:
		t := strings.TrimSpace(x)
		t = strings.TrimPrefix(t, "+")
		if t == "" || strings.HasPrefix(t, "-") && len(t) == 1 {
			return 0, false
		}
		n, err := strconv.ParseInt(t, 10, 64)
		return n, err == nil
	default:
		return 0, false
	}
}

func (s *Server) putResult(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.answer(w, r, reply(false, pyString("'put_result' must use HTTP POST")))
		return
	}
	s.mu.Lock()
	s.stats.PutResults++
	s.putsNow++
	s.stats.MaxPutResultsInFlight = max(s.stats.MaxPutResultsInFlight, s.putsNow)
	s.notify()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.putsNow--
		s.notify()
		s.mu.Unlock()
	}()
	reject := func(msg string) {
		s.count(func(st *Stats) { st.Rejected++ })
		s.answer(w, r, reply(false, pyString(msg)))
	}
	_ = r.ParseMultipartForm(10 << 20) // form-encoded or multipart; JSON bodies are not parsed
	hdr, okH := r.PostForm["xqueue_header"]
	body, okB := r.PostForm["xqueue_body"]
	if !okH || !okB {
		reject("Incorrect reply format")
		return
	}
	var h map[string]any
	if err := json.Unmarshal([]byte(hdr[len(hdr)-1]), &h); err != nil || h == nil {
		reject("Incorrect reply format")
		return
	}
	rawID, okID := h["submission_id"]
	key, okKey := h["submission_key"]
	if !okID || !okKey {
		reject("Incorrect reply format")
		return
	}
	id, ok := pyInt(rawID)
	if !ok {
		s.djangoError(w, r, http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	sub := s.byID[id]
	s.mu.Unlock()
	if sub == nil {
		reject("Submission does not exist")
		return
	}
	// select_for_update: concurrent put_results for one row serialize.
	select {
	case sub.row <- struct{}{}:
	case <-s.closed:
		return
	}
	defer func() { <-sub.row }()

	s.mu.Lock()
	keyStr, isStr := key.(string)
	if sub.pullKey == "" || !isStr || keyStr != sub.pullKey {
		s.mu.Unlock()
		reject("Incorrect key for submission")
		return
	}
	sub.accepted++
	s.stats.Accepted++
	latency := s.lmsLatency
	fail := s.lmsFail > 0
	if fail {
		s.lmsFail--
	}
	s.notify()
	s.mu.Unlock()

	// post_grade_to_lms: synchronous, and it finishes even when the client
	// has stopped waiting.
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-s.closed:
			t.Stop()
			return
		}
	}
	s.mu.Lock()
	if fail {
		s.stats.LMSFailures++
	} else {
		sub.retired = true
		sub.callbacks++
		s.stats.Callbacks++
		s.callbacks = append(s.callbacks, Callback{
			Seq: len(s.callbacks) + 1, SubmissionID: sub.id, Queue: sub.queue,
			LMSKey: sub.lmsKey, CallbackURL: sub.callbackURL, Header: sub.header,
			Body: body[len(body)-1], Key: keyStr, Time: time.Now(),
		})
	}
	s.notify()
	s.mu.Unlock()
	s.answer(w, r, reply(true, pyString("")))
}

// lmsSubmit is the LMS-facing /xqueue/submit/ view.
func (s *Server) lmsSubmit(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		s.answer(w, r, reply(false, pyString("Queue requests should use HTTP POST")))
		return
	}
	_ = r.ParseMultipartForm(10 << 20)
	hdr, okH := r.PostForm["xqueue_header"]
	body, okB := r.PostForm["xqueue_body"]
	if !okH || !okB {
		s.answer(w, r, reply(false, pyString("Queue request has invalid format")))
		return
	}
	_, n, err := s.submit(hdr[len(hdr)-1], body[len(body)-1])
	if err != nil {
		s.answer(w, r, reply(false, pyString(err.Error())))
		return
	}
	s.answer(w, r, reply(true, pyString(strconv.Itoa(n))))
}
