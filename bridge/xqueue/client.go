// Package xqueue is a client for xqueue's pull interface (openedx/xqueue),
// as described in docs/xqueue-protocol.md (sections 1 and 6) in this repository.
//
// A Client logs in with a Django session, pulls submissions, reports queue
// length and posts results. It re-logs in transparently when the session
// expires (a 302 to the login page or a "login_required" reply), one login
// at a time however many goroutines call it. Reads (get_queuelen,
// get_submission) and logins retry transient failures with exponential
// backoff and full jitter; put_result is retried only when it certainly did
// not reach xqueue, because a put_result that lands twice makes xqueue post
// to the LMS twice. Errors wrap sentinels (ErrQueueEmpty, ErrIncorrectKey,
// ErrOutcomeUnknown, ...); what to do about each is decided by the caller
// (the bridge's relay posts, its intake polls).
package xqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultQueue          = "certificates"
	DefaultRequestTimeout = 10 * time.Second
	// DefaultResultTimeout is well above the ~25 s xqueue may spend posting
	// to a hanging LMS before it answers put_result.
	DefaultResultTimeout = 60 * time.Second
	DefaultMaxAttempts   = 5
	DefaultRetryBase     = 200 * time.Millisecond
	DefaultRetryMax      = 5 * time.Second
	// DefaultMaxReplyBytes fits the largest real reply: a 64 KiB job body
	// escaped twice (get_submission's content is JSON inside JSON) is at
	// most ~7 bytes per byte.
	DefaultMaxReplyBytes = 512 << 10
)

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// BaseURL is xqueue's address, e.g. http://127.0.0.1:18040 or
	// https://xqueue.example.org/prefix; the /xqueue/... paths are appended,
	// always with their trailing slash. It must not carry credentials.
	BaseURL string
	// Queue is the queue to pull from (default "certificates").
	Queue string
	// Username and Password are the xqueue (Django) account.
	Username, Password string
	// BasicAuth is an optional "user:pass" for an HTTP basic-auth front
	// (nginx); it is sent on every request.
	BasicAuth string
	// HTTPClient is an optional client to copy transport settings from. The
	// Client uses its own copy with a cookie jar and redirects disabled.
	// A Timeout set on it also bounds put_result; leave it zero.
	HTTPClient *http.Client
	// RequestTimeout bounds each login, status and get_queuelen attempt
	// (default 10 s), and get_submission's unless ResultTimeout is longer.
	RequestTimeout time.Duration
	// ResultTimeout bounds each put_result attempt (default 60 s). Keep it
	// well above 30 s: xqueue answers only after posting to the LMS. It
	// also bounds get_submission when longer than RequestTimeout: a pull
	// may wait behind put_results in xqueue, and is never repeated once
	// sent (see Pull).
	ResultTimeout time.Duration
	// MaxAttempts bounds the attempts of a call that fails transiently
	// (default 5).
	MaxAttempts int
	// RetryBase and RetryMax shape the backoff between attempts: a random
	// wait in [0, min(RetryMax, RetryBase*2^(attempt-1))) (full jitter).
	RetryBase, RetryMax time.Duration
	// MaxReplyBytes bounds a reply body (default 512 KiB); a larger reply
	// is a bad reply (for get_submission a *TooLargeError). The whole reply
	// must arrive within the request's timeout: a trickle is cut off.
	MaxReplyBytes int64
	// Logger receives structured logs (default slog.Default()). Passwords,
	// the basic-auth value and the session cookie are never logged.
	Logger *slog.Logger
}

// Header is the xqueue_header of a pulled submission, echoed back with its
// result. SubmissionKey is the lease key: it changes every time xqueue
// hands the submission out.
type Header struct {
	SubmissionID  int64  `json:"submission_id"`
	SubmissionKey string `json:"submission_key"`
}

// Submission is one pulled job.
type Submission struct {
	// Header identifies the submission and carries the current key.
	Header Header
	// Body is the xqueue_body JSON text exactly as the LMS sent it. It is
	// not validated here: a caller that cannot parse it should answer with
	// an error result, or xqueue offers it again after every lease.
	Body []byte
	// Files is xqueue_files as sent (a JSON text, "{}" without files).
	Files string
}

// EncodeHeader renders h as the JSON text put_result expects in its
// xqueue_header form field.
func EncodeHeader(h Header) string {
	b, _ := json.Marshal(h) // cannot fail: an int and a string
	return string(b)
}

// Client talks to one xqueue queue. It is safe for concurrent use.
type Client struct {
	cfg       Config
	base      string // scheme://host[/prefix], no trailing slash
	baseURL   *url.URL
	hc        *http.Client
	log       *slog.Logger
	basicUser string
	basicPass string
	hasBasic  bool

	loginSem chan struct{} // one login at a time
	mu       sync.Mutex
	gen      uint64 // session generation; 0 = not logged in yet
}

// New checks cfg and returns a Client. It does no I/O: the first call logs
// in.
func New(cfg Config) (*Client, error) {
	if cfg.BaseURL == "" {
		return nil, fmt.Errorf("xqueue config: %w: BaseURL is empty", ErrInvalidArgument)
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("xqueue config: %w: BaseURL: %v", ErrInvalidArgument, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("xqueue config: %w: BaseURL %q is not an http(s) address", ErrInvalidArgument, u.Redacted())
	}
	if u.User != nil {
		return nil, fmt.Errorf("xqueue config: %w: BaseURL must not contain credentials; use BasicAuth", ErrInvalidArgument)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("xqueue config: %w: BaseURL %q has a query or fragment", ErrInvalidArgument, u.String())
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, fmt.Errorf("xqueue config: %w: Username and Password are required", ErrInvalidArgument)
	}
	c := &Client{cfg: cfg, loginSem: make(chan struct{}, 1)}
	if cfg.BasicAuth != "" {
		user, pass, ok := strings.Cut(cfg.BasicAuth, ":")
		if !ok {
			return nil, fmt.Errorf("xqueue config: %w: BasicAuth must be \"user:pass\"", ErrInvalidArgument)
		}
		c.basicUser, c.basicPass, c.hasBasic = user, pass, true
	}
	if c.cfg.Queue == "" {
		c.cfg.Queue = DefaultQueue
	}
	if c.cfg.RequestTimeout <= 0 {
		c.cfg.RequestTimeout = DefaultRequestTimeout
	}
	if c.cfg.ResultTimeout <= 0 {
		c.cfg.ResultTimeout = DefaultResultTimeout
	}
	if c.cfg.MaxAttempts <= 0 {
		c.cfg.MaxAttempts = DefaultMaxAttempts
	}
	if c.cfg.RetryBase <= 0 {
		c.cfg.RetryBase = DefaultRetryBase
	}
	if c.cfg.RetryMax <= 0 {
		c.cfg.RetryMax = DefaultRetryMax
	}
	if c.cfg.MaxReplyBytes <= 0 {
		c.cfg.MaxReplyBytes = DefaultMaxReplyBytes
	}
	c.log = cfg.Logger
	if c.log == nil {
		c.log = slog.Default()
	}
	c.log = c.log.With("component", "xqueue", "queue", c.cfg.Queue)

	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("xqueue config: cookie jar: %w", err)
	}
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	} else {
		hc.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c.baseURL = u
	c.base = u.String()
	return c, nil
}

// CloseIdleConnections closes the client's idle keep-alive connections.
// The Client stays usable.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Queue is the queue this client pulls from.
func (c *Client) Queue() string { return c.cfg.Queue }

// response is a complete HTTP exchange.
type response struct {
	status   int
	location string
	body     []byte
	tooLarge bool
}

// transportError is a failed exchange; sent tells whether the whole request
// had been written when it failed (then xqueue may have acted on it).
type transportError struct {
	err  error
	sent bool
}

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// do performs one HTTP exchange bounded by timeout.
func (c *Client) do(ctx context.Context, timeout time.Duration, method, endpoint string, query, form url.Values) (*response, error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wrote atomic.Bool
	actx = httptrace.WithClientTrace(actx, &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err == nil {
				wrote.Store(true)
			}
		},
	})
	target := c.base + "/xqueue/" + endpoint + "/"
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(actx, method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%w: build request: %v", ErrInvalidArgument, err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "application/json, text/html;q=0.9")
	req.Header.Set("User-Agent", "certd-xqueue/1")
	if c.hasBasic {
		req.SetBasicAuth(c.basicUser, c.basicPass)
	}
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.log.Debug("xqueue request failed", "endpoint", endpoint, "sent", wrote.Load(),
			"duration", time.Since(start), "error", err)
		return nil, &transportError{err: err, sent: wrote.Load()}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxReplyBytes+1))
	if err != nil {
		c.log.Debug("xqueue reply unreadable", "endpoint", endpoint, "status", resp.StatusCode,
			"duration", time.Since(start), "error", err)
		return nil, &transportError{err: fmt.Errorf("read reply: %w", err), sent: true}
	}
	r := &response{status: resp.StatusCode, location: resp.Header.Get("Location"), body: data}
	if int64(len(data)) > c.cfg.MaxReplyBytes {
		r.tooLarge = true
		r.body = data[:c.cfg.MaxReplyBytes]
	}
	c.log.Debug("xqueue request", "endpoint", endpoint, "method", method, "status", resp.StatusCode,
		"bytes", len(data), "duration", time.Since(start))
	return r, nil
}

// isLoginRedirect reports whether r is Django's redirect to the login page.
func isLoginRedirect(r *response) bool {
	if r.status < 300 || r.status > 399 {
		return false
	}
	u, err := url.Parse(r.location)
	return err == nil && strings.Contains(u.Path, "/login")
}

// isLoginRequired reports the reply that follows the login redirect.
func isLoginRequired(rep reply) bool {
	if rep.ok {
		return false
	}
	s, err := decodeString(rep.content)
	return err == nil && s == "login_required"
}

// session returns the current session generation, logging in first when
// there is none.
func (c *Client) session(ctx context.Context) (uint64, error) {
	c.mu.Lock()
	g := c.gen
	c.mu.Unlock()
	if g > 0 {
		return g, nil
	}
	if err := c.relogin(ctx, 0); err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen, nil
}

// relogin logs in unless another caller already did since generation stale
// was current. Logins are serialised: concurrent callers that find the same
// expired session wait for one login and reuse it.
func (c *Client) relogin(ctx context.Context, stale uint64) error {
	select {
	case c.loginSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("xqueue login: %w", ctx.Err())
	}
	defer func() { <-c.loginSem }()
	c.mu.Lock()
	g := c.gen
	c.mu.Unlock()
	if g != stale {
		return nil
	}
	if err := c.login(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.gen++
	c.mu.Unlock()
	return nil
}

// Login logs in now, replacing any session. Calls log in by themselves when
// needed; Login is for checking the credentials at start-up.
func (c *Client) Login(ctx context.Context) error {
	c.mu.Lock()
	g := c.gen
	c.mu.Unlock()
	return c.relogin(ctx, g)
}

// login posts the credentials, retrying transient failures.
func (c *Client) login(ctx context.Context) error {
	form := url.Values{"username": {c.cfg.Username}, "password": {c.cfg.Password}}
	for attempt := 1; ; attempt++ {
		resp, err := c.do(ctx, c.cfg.RequestTimeout, http.MethodPost, "login", nil, form)
		var retryErr error
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return fmt.Errorf("xqueue login: %w", ctx.Err())
			}
			if errors.Is(err, ErrInvalidArgument) {
				return fmt.Errorf("xqueue login: %w", err)
			}
			retryErr = err
		case resp.status == http.StatusOK:
			if resp.tooLarge {
				return fmt.Errorf("xqueue login: %w: reply larger than %d bytes", ErrBadReply, c.cfg.MaxReplyBytes)
			}
			rep, err := parseReply(resp.body)
			if err != nil {
				return fmt.Errorf("xqueue login: %w", err)
			}
			msg, _ := decodeString(rep.content)
			if !rep.ok {
				return fmt.Errorf("xqueue login as %q: %w: %s", c.cfg.Username, ErrAuth, quote([]byte(msg)))
			}
			if !c.hasSessionCookie() {
				return fmt.Errorf("xqueue login: %w: login succeeded but set no sessionid cookie", ErrBadReply)
			}
			c.log.Info("xqueue logged in", "user", c.cfg.Username)
			return nil
		case resp.status == http.StatusUnauthorized:
			return fmt.Errorf("xqueue login: %w: HTTP 401 from the basic-auth front (check BasicAuth)", ErrAuth)
		case resp.status >= 500 || resp.status == http.StatusTooManyRequests:
			retryErr = fmt.Errorf("HTTP %d", resp.status)
		default:
			return fmt.Errorf("xqueue login: %w: unexpected HTTP %d", ErrBadReply, resp.status)
		}
		if err := c.backoff(ctx, "login", attempt, retryErr); err != nil {
			return fmt.Errorf("xqueue login: %w", err)
		}
	}
}

func (c *Client) hasSessionCookie() bool {
	for _, ck := range c.hc.Jar.Cookies(c.baseURL) {
		if ck.Name == "sessionid" && ck.Value != "" {
			return true
		}
	}
	return false
}

// backoff waits before attempt+1, or returns the final error when attempts
// are used up or ctx ends.
func (c *Client) backoff(ctx context.Context, op string, attempt int, cause error) error {
	if attempt >= c.cfg.MaxAttempts {
		return fmt.Errorf("%w: %d attempts, last: %w", ErrUnavailable, attempt, cause)
	}
	ceiling := c.cfg.RetryBase << min(attempt-1, 30)
	if ceiling > c.cfg.RetryMax || ceiling <= 0 {
		ceiling = c.cfg.RetryMax
	}
	wait := rand.N(ceiling)
	c.log.Warn("xqueue call failed, retrying", "op", op, "attempt", attempt, "wait", wait, "error", cause)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w (after %d attempts, last: %v)", ctx.Err(), attempt, cause)
	}
}

// get performs a session GET with re-login and retries, and returns the
// parsed reply. A pull (get_submission) that was sent but got no answer
// (timeout, connection lost, 504 from a front) is not repeated: xqueue may
// still be running it, and two pulls at once race inside xqueue (one
// submission under two keys, or an answered one brought back).
func (c *Client) get(ctx context.Context, endpoint string, query url.Values) (reply, error) {
	pull := endpoint == "get_submission"
	timeout := c.cfg.RequestTimeout
	if pull {
		// xqueue's few workers may be busy with put_results (each up to
		// ~25 s) before one gets to the pull: wait for it rather than
		// leave a pull behind that still runs.
		timeout = max(timeout, c.cfg.ResultTimeout)
	}
	relogged := false
	for attempt := 1; ; attempt++ {
		gen, err := c.session(ctx)
		if err != nil {
			return reply{}, err
		}
		resp, err := c.do(ctx, timeout, http.MethodGet, endpoint, query, nil)
		var retryErr error
		switch {
		case err != nil:
			var te *transportError
			if pull && errors.As(err, &te) && te.sent {
				return reply{}, fmt.Errorf("%w: no answer after sending, not repeated (xqueue may still be running it): %w", ErrUnavailable, err)
			}
			if ctx.Err() != nil {
				return reply{}, ctx.Err()
			}
			if errors.Is(err, ErrInvalidArgument) {
				return reply{}, err
			}
			retryErr = err
		case pull && resp.status == http.StatusGatewayTimeout:
			return reply{}, fmt.Errorf("%w: HTTP 504, not repeated (xqueue may still be running it)", ErrUnavailable)
		case isLoginRedirect(resp):
			if relogged {
				return reply{}, fmt.Errorf("%w: still redirected to login after logging in (session cookie not kept?)", ErrAuth)
			}
			relogged = true
			c.log.Info("xqueue session expired, logging in again", "endpoint", endpoint)
			if err := c.relogin(ctx, gen); err != nil {
				return reply{}, err
			}
			attempt--
			continue
		case resp.status == http.StatusOK:
			if resp.tooLarge {
				return reply{}, newTooLarge(resp.body, c.cfg.MaxReplyBytes)
			}
			rep, err := parseReply(resp.body)
			if err != nil {
				return reply{}, err
			}
			if isLoginRequired(rep) {
				if relogged {
					return reply{}, fmt.Errorf("%w: still login_required after logging in", ErrAuth)
				}
				relogged = true
				if err := c.relogin(ctx, gen); err != nil {
					return reply{}, err
				}
				attempt--
				continue
			}
			return rep, nil
		case resp.status == http.StatusUnauthorized:
			return reply{}, fmt.Errorf("%w: HTTP 401 from the basic-auth front (check BasicAuth)", ErrAuth)
		case resp.status >= 500 || resp.status == http.StatusTooManyRequests:
			retryErr = fmt.Errorf("HTTP %d", resp.status)
		case resp.status >= 300 && resp.status <= 399:
			return reply{}, fmt.Errorf("%w: unexpected HTTP %d redirect to %q", ErrBadReply, resp.status, resp.location)
		default:
			return reply{}, fmt.Errorf("%w: unexpected HTTP %d", ErrBadReply, resp.status)
		}
		if err := c.backoff(ctx, endpoint, attempt, retryErr); err != nil {
			return reply{}, err
		}
	}
}

// failure turns a return_code 1 reply into an error wrapping sentinel.
func failure(rep reply, sentinel error) error {
	msg, err := decodeString(rep.content)
	if err != nil {
		return fmt.Errorf("%w: %s", sentinel, quote(rep.content))
	}
	return fmt.Errorf("%w: %s", sentinel, quote([]byte(msg)))
}

// QueueLength returns how many submissions wait in the queue: not retired
// and not under lease.
func (c *Client) QueueLength(ctx context.Context) (int, error) {
	rep, err := c.get(ctx, "get_queuelen", url.Values{"queue_name": {c.cfg.Queue}})
	if err != nil {
		return 0, fmt.Errorf("xqueue get_queuelen: %w", err)
	}
	if !rep.ok {
		msg, _ := decodeString(rep.content)
		if strings.HasPrefix(msg, "Valid queue names are") {
			return 0, fmt.Errorf("xqueue get_queuelen %q: %w", c.cfg.Queue, failure(rep, ErrQueueNotFound))
		}
		return 0, fmt.Errorf("xqueue get_queuelen: %w", failure(rep, ErrRejected))
	}
	n, err := decodeQueueLen(rep.content)
	if err != nil {
		return 0, fmt.Errorf("xqueue get_queuelen: %w", err)
	}
	return n, nil
}

// Pull takes one submission from the queue. xqueue leases it: it stays
// hidden for the lease (one minute by default) and, without an accepted
// PutResult, comes back with the same SubmissionID and a new key. Pull
// returns an error wrapping ErrQueueEmpty when nothing is available.
//
// A pull sent without an answer (timeout, connection lost, 504) is not
// repeated: it returns an error wrapping ErrUnavailable, and the caller
// should wait before pulling again. xqueue may still be running the first
// pull, and pulls that overlap inside xqueue hand one submission out under
// two keys or bring back one already answered.
func (c *Client) Pull(ctx context.Context) (*Submission, error) {
	rep, err := c.get(ctx, "get_submission", url.Values{"queue_name": {c.cfg.Queue}})
	if err != nil {
		return nil, fmt.Errorf("xqueue get_submission: %w", err)
	}
	if !rep.ok {
		msg, _ := decodeString(rep.content)
		switch {
		case strings.HasPrefix(msg, "Queue '") && strings.HasSuffix(msg, "' is empty"):
			return nil, fmt.Errorf("xqueue get_submission %q: %w", c.cfg.Queue, ErrQueueEmpty)
		case strings.HasPrefix(msg, "Queue '") && strings.HasSuffix(msg, "' not found"):
			return nil, fmt.Errorf("xqueue get_submission %q: %w", c.cfg.Queue, failure(rep, ErrQueueNotFound))
		case strings.Contains(msg, "Please try again"):
			return nil, fmt.Errorf("xqueue get_submission: %w", failure(rep, ErrUnavailable))
		default:
			return nil, fmt.Errorf("xqueue get_submission: %w", failure(rep, ErrRejected))
		}
	}
	sub, err := decodeSubmission(rep.content)
	if err != nil {
		return nil, fmt.Errorf("xqueue get_submission: %w", err)
	}
	c.log.Debug("xqueue pulled", "submission_id", sub.Header.SubmissionID, "bytes", len(sub.Body))
	return sub, nil
}

// PutResult posts body (a JSON text) as the result of the submission named
// by header, which must carry the newest key. xqueue posts it to the LMS
// before answering, so this can take tens of seconds (ResultTimeout).
//
// It is retried only while the request certainly did not reach xqueue
// (connection refused, 502, 503, 429, session expired). When it may have
// arrived but no answer came (timeout, 500, 504, connection lost after
// sending, unreadable answer) it returns an error wrapping
// ErrOutcomeUnknown and does not retry: a second put_result that lands
// posts a second callback to the LMS.
func (c *Client) PutResult(ctx context.Context, header Header, body []byte) error {
	if header.SubmissionID <= 0 || header.SubmissionKey == "" {
		return fmt.Errorf("xqueue put_result: %w: header needs a submission_id and submission_key", ErrInvalidArgument)
	}
	if !json.Valid(body) {
		return fmt.Errorf("xqueue put_result %d: %w: body is not valid JSON", header.SubmissionID, ErrInvalidArgument)
	}
	form := url.Values{"xqueue_header": {EncodeHeader(header)}, "xqueue_body": {string(body)}}
	err := c.putResult(ctx, form)
	if err != nil {
		return fmt.Errorf("xqueue put_result %d: %w", header.SubmissionID, err)
	}
	c.log.Debug("xqueue result accepted", "submission_id", header.SubmissionID)
	return nil
}

func (c *Client) putResult(ctx context.Context, form url.Values) error {
	relogged := false
	for attempt := 1; ; attempt++ {
		gen, err := c.session(ctx)
		if err != nil {
			return err
		}
		resp, err := c.do(ctx, c.cfg.ResultTimeout, http.MethodPost, "put_result", nil, form)
		var retryErr error
		switch {
		case err != nil:
			var te *transportError
			if errors.As(err, &te) && te.sent {
				return fmt.Errorf("%w: no answer after sending: %w", ErrOutcomeUnknown, err)
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, ErrInvalidArgument) {
				return err
			}
			retryErr = err
		case isLoginRedirect(resp):
			// login_required refuses before the view runs: nothing happened.
			if relogged {
				return fmt.Errorf("%w: still redirected to login after logging in (session cookie not kept?)", ErrAuth)
			}
			relogged = true
			c.log.Info("xqueue session expired, logging in again", "endpoint", "put_result")
			if err := c.relogin(ctx, gen); err != nil {
				return err
			}
			attempt--
			continue
		case resp.status == http.StatusOK:
			if resp.tooLarge {
				return fmt.Errorf("%w: %w: reply larger than %d bytes", ErrOutcomeUnknown, ErrBadReply, c.cfg.MaxReplyBytes)
			}
			rep, err := parseReply(resp.body)
			if err != nil {
				return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
			}
			if rep.ok {
				return nil
			}
			msg, _ := decodeString(rep.content)
			switch msg {
			case "login_required":
				if relogged {
					return fmt.Errorf("%w: still login_required after logging in", ErrAuth)
				}
				relogged = true
				if err := c.relogin(ctx, gen); err != nil {
					return err
				}
				attempt--
				continue
			case "Incorrect key for submission":
				return failure(rep, ErrIncorrectKey)
			case "Submission does not exist":
				return failure(rep, ErrNoSubmission)
			default:
				return failure(rep, ErrRejected)
			}
		case resp.status == http.StatusUnauthorized:
			return fmt.Errorf("%w: HTTP 401 from the basic-auth front (check BasicAuth)", ErrAuth)
		case resp.status == http.StatusBadGateway || resp.status == http.StatusServiceUnavailable ||
			resp.status == http.StatusTooManyRequests:
			// The front could not hand the request to xqueue.
			retryErr = fmt.Errorf("HTTP %d", resp.status)
		case resp.status >= 500:
			return fmt.Errorf("%w: HTTP %d", ErrOutcomeUnknown, resp.status)
		case resp.status >= 300 && resp.status <= 399:
			return fmt.Errorf("%w: unexpected HTTP %d redirect to %q", ErrBadReply, resp.status, resp.location)
		default:
			return fmt.Errorf("%w: unexpected HTTP %d", ErrBadReply, resp.status)
		}
		if err := c.backoff(ctx, "put_result", attempt, retryErr); err != nil {
			return err
		}
	}
}

// Status checks that xqueue answers (GET /xqueue/status/, no session
// needed). It makes one attempt.
func (c *Client) Status(ctx context.Context) error {
	resp, err := c.do(ctx, c.cfg.RequestTimeout, http.MethodGet, "status", nil, nil)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("xqueue status: %w", ctx.Err())
		}
		return fmt.Errorf("xqueue status: %w: %w", ErrUnavailable, err)
	}
	switch {
	case resp.status == http.StatusUnauthorized:
		return fmt.Errorf("xqueue status: %w: HTTP 401 from the basic-auth front", ErrAuth)
	case resp.status >= 500:
		return fmt.Errorf("xqueue status: %w: HTTP %d", ErrUnavailable, resp.status)
	case resp.status != http.StatusOK || resp.tooLarge:
		return fmt.Errorf("xqueue status: %w: HTTP %d", ErrBadReply, resp.status)
	}
	rep, err := parseReply(resp.body)
	if err != nil {
		return fmt.Errorf("xqueue status: %w", err)
	}
	if !rep.ok {
		return fmt.Errorf("xqueue status: %w", failure(rep, ErrRejected))
	}
	return nil
}
