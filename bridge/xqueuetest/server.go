// Package xqueuetest is a spec-exact stand-in for xqueue's pull interface
// (the Django service openedx/xqueue), for tests.
//
// It speaks the wire protocol described in docs/xqueue-protocol.md (sections
// 1 and 6) in this repository, byte for byte: every answer is HTTP 200 text/html carrying
// {"return_code": .., "content": ..} in Python's json.dumps encoding, except
// the measured non-200 cases (302 to a relative login URL without a session,
// 301 without the trailing slash, 403 for a POST to get_*, 500 for a
// non-integer submission_id, 401 from an optional basic-auth front). Leases,
// fresh keys on re-offer, retirement by the first accepted put_result and the
// duplicate LMS callback of a repeated put_result behave as in xqueue.
//
// get_submission races as xqueue's does (by default): it reads the oldest
// unleased row without a lock and later saves the whole row, so pulls that
// overlap hand one submission out under two keys (the last save's key
// wins) and a save that lands after an accepted put_result un-retires the
// submission. WithPullDelay and WithPullHook widen the window for tests;
// WithAtomicPulls turns the race off. Stats counts what the race did
// (MaxPullsInFlight, LostLeases, Unretired) and every LMS callback.
//
// The test side plays the LMS: Submit queues a job, Callbacks shows every
// result xqueue "posted to the LMS", and the Wait methods await events
// without sleeping. Faults (5xx, dropped connections, LMS failures, expired
// sessions and leases) can be injected at any time. A Server is safe for
// concurrent use.
package xqueuetest

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Default settings of a Server.
const (
	// DefaultUsername and DefaultPassword are the credentials accepted when
	// no WithUser option is given.
	DefaultUsername = "certd"
	DefaultPassword = "xqueue-secret"
	// DefaultQueue is the queue the LMS sends certificate jobs to.
	DefaultQueue = "certificates"
	// DefaultLease is xqueue's SUBMISSION_PROCESSING_DELAY.
	DefaultLease = time.Minute
	// DefaultLMSBaseURL is the LMS address used in generated callback URLs.
	DefaultLMSBaseURL = "https://lms.example.test"
)

// ErrClosed is returned by the Wait methods when the server is closed.
var ErrClosed = errors.New("xqueuetest: server closed")

// Option configures a Server.
type Option func(*Server)

// WithUser adds an xqueue account. Without any WithUser option the server
// accepts DefaultUsername / DefaultPassword.
func WithUser(username, password string) Option {
	return func(s *Server) { s.users[username] = password }
}

// WithBasicAuth puts an nginx-style basic-auth front before xqueue: every
// request without these credentials gets 401.
func WithBasicAuth(username, password string) Option {
	return func(s *Server) { s.basicUser, s.basicPass, s.basicAuth = username, password, true }
}

// WithLease sets how long a pulled submission stays hidden
// (SUBMISSION_PROCESSING_DELAY, default one minute).
func WithLease(d time.Duration) Option {
	return func(s *Server) { s.lease = d }
}

// WithQueues sets the queue names xqueue knows (default "certificates").
// Submit uses the first one.
func WithQueues(names ...string) Option {
	return func(s *Server) { s.queues = slices.Clone(names) }
}

// WithLMSLatency sets how long each LMS callback takes. put_result posts to
// the LMS synchronously, so it answers only after this delay (the real
// xqueue can take ~25 s when the LMS hangs). The callback completes even if
// the client gives up waiting, as in xqueue.
func WithLMSLatency(d time.Duration) Option {
	return func(s *Server) { s.lmsLatency = d }
}

// WithLMSBaseURL sets the LMS address used in the lms_callback_url of
// submissions made by Submit (default DefaultLMSBaseURL).
func WithLMSBaseURL(u string) Option {
	return func(s *Server) { s.lmsBase = strings.TrimSuffix(u, "/") }
}

// WithPullDelay widens get_submission's race window: each pull waits d
// between reading the oldest unleased row and saving it back. Default 0
// (the window is then only as wide as the handler's own work).
func WithPullDelay(d time.Duration) Option {
	return func(s *Server) { s.pullDelay = d }
}

// WithPullHook calls hook(id) inside each pull's race window, after the row
// of submission id was read and before it is saved. A hook may block (for
// instance until another pull is in flight) to force an overlap; it should
// watch ctx, which ends when the server closes.
func WithPullHook(hook func(ctx context.Context, id int64)) Option {
	return func(s *Server) { s.pullHook = hook }
}

// WithAtomicPulls makes get_submission read and save under one lock, as if
// xqueue locked the row: no two pulls get the same submission and no pull
// un-retires one. Real xqueue does not do this (see the package doc).
func WithAtomicPulls() Option {
	return func(s *Server) { s.atomicPulls = true }
}

// WithLogf logs every request the server answers, e.g. WithLogf(t.Logf).
func WithLogf(logf func(format string, args ...any)) Option {
	return func(s *Server) { s.logf = logf }
}

// Server is a running xqueue stand-in on 127.0.0.1.
type Server struct {
	addr    string // host:port, kept across Down/Up
	url     string
	lc      sync.Mutex // guards srv
	srv     *http.Server
	serving sync.WaitGroup

	// configuration, fixed after NewServer
	users                map[string]string
	basicAuth            bool
	basicUser, basicPass string
	queues               []string
	lmsBase              string
	logf                 func(string, ...any)
	pullDelay            time.Duration
	pullHook             func(context.Context, int64)
	atomicPulls          bool
	ctx                  context.Context // ends at Close
	cancel               context.CancelFunc

	closeOnce sync.Once
	closed    chan struct{}

	mu         sync.Mutex
	lease      time.Duration
	lmsLatency time.Duration
	lmsFail    int
	sessions   map[string]string // sessionid -> username
	subs       []*submission     // in arrival order
	byID       map[int64]*submission
	nextID     int64
	callbacks  []Callback
	faults     []*Fault
	stats      Stats
	changed    chan struct{}
	pullsNow   int // get_submission views in flight
	putsNow    int // put_result views in flight (each may wait for the LMS)
}

type submission struct {
	id          int64
	queue       string
	header      string
	body        string
	files       string
	lmsKey      string
	callbackURL string
	arrival     time.Time
	pullTime    time.Time
	pullKey     string
	pulls       int
	retired     bool
	accepted    int
	callbacks   int
	row         chan struct{} // select_for_update: one put_result at a time
}

// NewServer starts a stand-in xqueue on a loopback port. Close it when done.
func NewServer(opts ...Option) *Server {
	s := &Server{
		users:    map[string]string{},
		queues:   []string{DefaultQueue},
		lmsBase:  DefaultLMSBaseURL,
		lease:    DefaultLease,
		sessions: map[string]string{},
		byID:     map[int64]*submission{},
		changed:  make(chan struct{}),
		closed:   make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(s)
	}
	if len(s.users) == 0 {
		s.users[DefaultUsername] = DefaultPassword
	}
	if len(s.queues) == 0 {
		s.queues = []string{DefaultQueue}
	}
	s.addr = "127.0.0.1:0"
	if err := s.listen(); err != nil {
		panic(fmt.Sprintf("xqueuetest: listen: %v", err))
	}
	s.url = "http://" + s.addr
	return s
}

// listen starts serving on s.addr; the caller holds no lock.
func (s *Server) listen() error {
	s.lc.Lock()
	defer s.lc.Unlock()
	if s.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	s.serving.Add(1)
	go func() {
		defer s.serving.Done()
		_ = srv.Serve(ln)
	}()
	return nil
}

// Down takes xqueue off the network: the listener closes (new connections
// are refused) and open connections are cut. Requests already inside a
// view finish their work (a put_result still posts to the LMS), but their
// answers are lost. Up brings it back on the same address with its state.
func (s *Server) Down() {
	s.lc.Lock()
	defer s.lc.Unlock()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// Up serves again after Down, on the same address.
func (s *Server) Up() error {
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	if err := s.listen(); err != nil {
		return fmt.Errorf("xqueuetest: up again on %s: %w", s.addr, err)
	}
	return nil
}

// URL is the server's base address, e.g. http://127.0.0.1:41234 (xqueue's
// paths are under /xqueue/).
func (s *Server) URL() string { return s.url }

// Close stops the server. In-flight put_results waiting on the simulated LMS
// are abandoned (no callback is recorded) and Wait methods return ErrClosed.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		s.Down()
		s.serving.Wait()
	})
}

// notify wakes every waiter; the caller holds s.mu.
func (s *Server) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) now() time.Time { return time.Now() }

// newKey returns a 32-hex key like xqueue's make_hashkey (an md5 hexdigest).
func newKey(seed string) string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	sum := md5.Sum(append([]byte(seed), r[:]...))
	return hex.EncodeToString(sum[:])
}

func randomToken(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// available reports whether xqueue would hand sub out now: not retired and
// never pulled or pulled at least one lease ago. The caller holds s.mu.
func (s *Server) available(sub *submission, now time.Time) bool {
	if sub.retired {
		return false
	}
	return sub.pullTime.IsZero() || !sub.pullTime.After(now.Add(-s.lease))
}

// ---------------------------------------------------------------------------
// Test-side API: the LMS and the test's eyes.

// Submit queues a certificate job the way the LMS does, with the header
// {"lms_callback_url": "<lms>/update_certificate?key=<k>", "lms_key": "<k>",
// "queue_name": "<first queue>"} and body as xqueue_body. It returns the
// submission_id.
func (s *Server) Submit(body string) int64 {
	id, err := s.SubmitTo(s.queues[0], body)
	if err != nil {
		panic(err) // cannot happen: the first queue always exists
	}
	return id
}

// SubmitTo is Submit for a named queue; it fails for a queue xqueue does not
// know.
func (s *Server) SubmitTo(queue, body string) (int64, error) {
	key := newKey(body)
	header := pyObject(
		"lms_callback_url", pyString(s.lmsBase+"/update_certificate?key="+key),
		"lms_key", pyString(key),
		"queue_name", pyString(queue))
	return s.SubmitRaw(header, body)
}

// SubmitRaw queues a job with a header of the test's choosing, validated as
// xqueue's LMS interface does (a JSON object with lms_callback_url, lms_key
// and queue_name). As in xqueue, an earlier unretired submission with the
// same lms_callback_url is retired.
func (s *Server) SubmitRaw(header, body string) (int64, error) {
	id, _, err := s.submit(header, body)
	return id, err
}

func (s *Server) submit(header, body string) (int64, int, error) {
	var h map[string]any
	if err := json.Unmarshal([]byte(header), &h); err != nil || h == nil {
		return 0, 0, errors.New("Queue request has invalid format")
	}
	for _, tag := range []string{"lms_callback_url", "lms_key", "queue_name"} {
		if _, ok := h[tag]; !ok {
			return 0, 0, errors.New("Queue request has invalid format")
		}
	}
	queue := fmt.Sprint(h["queue_name"])
	if !slices.Contains(s.queues, queue) {
		return 0, 0, fmt.Errorf("Queue '%s' not found", queue)
	}
	cbURL := fmt.Sprint(h["lms_callback_url"])
	lmsKey, _ := h["lms_key"].(string)

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, old := range s.subs {
		if old.callbackURL == cbURL && !old.retired {
			old.retired = true
		}
	}
	s.nextID++
	sub := &submission{
		id: s.nextID, queue: queue, header: header, body: body, files: "{}",
		lmsKey: lmsKey, callbackURL: cbURL, arrival: s.now(),
		row: make(chan struct{}, 1),
	}
	s.subs = append(s.subs, sub)
	s.byID[sub.id] = sub
	s.stats.Submits++
	s.notify()
	return sub.id, s.queueLenLocked(queue), nil
}

// Submission is a snapshot of one submission as xqueue stores it.
type Submission struct {
	ID          int64
	Queue       string
	Header      string // the LMS's xqueue_header
	Body        string // the LMS's xqueue_body
	Files       string // xqueue_files, "{}" without files
	LMSKey      string
	CallbackURL string
	Arrival     time.Time
	PullTime    time.Time // zero if never pulled
	Key         string    // current submission_key (pullkey), "" if never pulled
	Pulls       int       // how often get_submission handed it out
	Leased      bool      // pulled and hidden now
	Retired     bool
	Accepted    int // put_results accepted
	Callbacks   int // LMS callbacks delivered
}

func (s *Server) snapshot(sub *submission, now time.Time) Submission {
	return Submission{
		ID: sub.id, Queue: sub.queue, Header: sub.header, Body: sub.body, Files: sub.files,
		LMSKey: sub.lmsKey, CallbackURL: sub.callbackURL, Arrival: sub.arrival,
		PullTime: sub.pullTime, Key: sub.pullKey, Pulls: sub.pulls,
		Leased:  !sub.retired && !sub.pullTime.IsZero() && !s.available(sub, now),
		Retired: sub.retired, Accepted: sub.accepted, Callbacks: sub.callbacks,
	}
}

// Submission returns the submission with this id.
func (s *Server) Submission(id int64) (Submission, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.byID[id]
	if !ok {
		return Submission{}, false
	}
	return s.snapshot(sub, s.now()), true
}

// Submissions returns every submission in arrival order.
func (s *Server) Submissions() []Submission {
	return s.filter(func(*submission) bool { return true })
}

// Pending returns the submissions not retired yet (leased or not).
func (s *Server) Pending() []Submission {
	return s.filter(func(sub *submission) bool { return !sub.retired })
}

// Retired returns the retired submissions.
func (s *Server) Retired() []Submission {
	return s.filter(func(sub *submission) bool { return sub.retired })
}

func (s *Server) filter(keep func(*submission) bool) []Submission {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Submission
	for _, sub := range s.subs {
		if keep(sub) {
			out = append(out, s.snapshot(sub, now))
		}
	}
	return out
}

// QueueLen is what get_queuelen would answer for queue now.
func (s *Server) QueueLen(queue string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queueLenLocked(queue)
}

func (s *Server) queueLenLocked(queue string) int {
	now := s.now()
	n := 0
	for _, sub := range s.subs {
		if sub.queue == queue && s.available(sub, now) {
			n++
		}
	}
	return n
}

// Callback is one result xqueue delivered to the LMS (update_certificate).
type Callback struct {
	Seq          int // 1-based order among all callbacks
	SubmissionID int64
	Queue        string
	LMSKey       string // the lms_key of the LMS's header
	CallbackURL  string
	Header       string // xqueue_header posted to the LMS: the LMS's own header
	Body         string // xqueue_body as the client posted it to put_result
	Key          string // the submission_key the client's put_result carried
	Time         time.Time
}

// Decode unmarshals the posted xqueue_body into v.
func (c Callback) Decode(v any) error {
	if err := json.Unmarshal([]byte(c.Body), v); err != nil {
		return fmt.Errorf("callback %d body: %w", c.Seq, err)
	}
	return nil
}

// Callbacks returns every LMS callback so far, in order.
func (s *Server) Callbacks() []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.callbacks)
}

// CallbacksFor returns the LMS callbacks for one submission.
func (s *Server) CallbacksFor(id int64) []Callback {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Callback
	for _, c := range s.callbacks {
		if c.SubmissionID == id {
			out = append(out, c)
		}
	}
	return out
}

// CallbackCount is how many LMS callbacks submission id caused.
func (s *Server) CallbackCount(id int64) int {
	return len(s.CallbacksFor(id))
}

// Stats counts what the server has seen.
type Stats struct {
	Requests     int // every HTTP request, including refused ones
	Unauthorized int // 401 from the basic-auth front
	Redirects    int // 302 to the login page (no session)
	Logins       int // successful logins
	FailedLogins int // login answered with return_code 1
	Logouts      int
	QueueLens    int // get_queuelen answered by the view
	Pulls        int // get_submission that handed out a submission
	// MaxPullsInFlight is the most get_submission views that ran at once.
	MaxPullsInFlight int
	// LostLeases counts pulls whose saved key replaced the key of another
	// pull that had read the same row: one submission under two keys.
	LostLeases int
	// Unretired counts pulls whose save brought back a submission that an
	// accepted put_result had retired while the pull was in its window.
	Unretired  int
	EmptyPulls int // get_submission answered "Queue '..' is empty"
	PutResults int // put_result requests that reached the view
	// MaxPutResultsInFlight is the most put_result views that ran at once
	// (each holds one of xqueue's workers while it calls the LMS).
	MaxPutResultsInFlight int
	Accepted              int // put_results accepted (key matched)
	Rejected              int // put_results answered with return_code 1
	Callbacks             int // LMS callbacks delivered
	LMSFailures           int // LMS callbacks that failed (FailLMS)
	Submits               int
	FaultsApplied         int // injected faults that fired
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Wait blocks until cond returns true, ctx ends or the server closes. cond
// is evaluated without locks held (it may call any Server method) after
// every state change, so Wait needs no polling or sleeping.
func (s *Server) Wait(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("xqueuetest wait: %w", ctx.Err())
		case <-s.closed:
			return ErrClosed
		}
	}
}

// WaitStats waits until cond holds for the counters and returns them.
func (s *Server) WaitStats(ctx context.Context, cond func(Stats) bool) (Stats, error) {
	var st Stats
	err := s.Wait(ctx, func() bool { st = s.Stats(); return cond(st) })
	return st, err
}

// WaitCallbacks waits until at least n LMS callbacks happened in total and
// returns all of them.
func (s *Server) WaitCallbacks(ctx context.Context, n int) ([]Callback, error) {
	var cbs []Callback
	err := s.Wait(ctx, func() bool { cbs = s.Callbacks(); return len(cbs) >= n })
	return cbs, err
}

// WaitRetired waits until submission id is retired.
func (s *Server) WaitRetired(ctx context.Context, id int64) error {
	return s.Wait(ctx, func() bool { sub, ok := s.Submission(id); return ok && sub.Retired })
}

// DropSessions expires every session: the next queue call of each client
// gets the 302 to the login page and must log in again.
func (s *Server) DropSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.sessions)
	s.notify()
}

// ExpireLeases ends every current lease at once, as if the lease duration
// had passed: leased submissions are offered again (with a new key on the
// next pull).
func (s *Server) ExpireLeases() {
	s.mu.Lock()
	defer s.mu.Unlock()
	past := s.now().Add(-s.lease - time.Second)
	for _, sub := range s.subs {
		if !sub.pullTime.IsZero() && sub.pullTime.After(past) {
			sub.pullTime = past
		}
	}
	s.notify()
}

// SetLease changes the lease duration for future decisions.
func (s *Server) SetLease(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lease = d
	s.notify()
}

// Reoffer makes submission id available again right away, retired or not,
// keeping its current key until the next pull. It reproduces what several
// xqueue workers do (two pollers get the same submission; a pull racing a
// put_result brings a finished submission back).
func (s *Server) Reoffer(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("xqueuetest: no submission %d", id)
	}
	sub.retired = false
	sub.pullTime = time.Time{}
	s.notify()
	return nil
}

// SetLMSLatency changes how long each LMS callback takes from now on.
func (s *Server) SetLMSLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lmsLatency = d
}

// FailLMS makes the next n LMS callbacks fail (the LMS is down): as in
// xqueue, put_result still answers success, but no callback is recorded and
// the submission stays unretired, to be offered again after its lease.
func (s *Server) FailLMS(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lmsFail += n
}

// Fault is an injected failure of the HTTP layer in front of xqueue
// (nginx, gunicorn, the network).
type Fault struct {
	// Endpoint limits the fault to one endpoint: "login", "logout",
	// "status", "get_queuelen", "get_submission", "put_result", "submit".
	// Empty matches every request.
	Endpoint string
	// Status is the HTTP status to answer with (e.g. 500, 502, 503, 504).
	Status int
	// Body, when set, is sent as the answer (with Status, default 200, as
	// text/html): a way to feed clients malformed or unusual replies.
	Body string
	// Location, when set, is sent as the Location header (with a 3xx
	// Status: a redirect, e.g. Django's relative one to the login page).
	Location string
	// Drop closes the connection without any answer instead.
	Drop bool
	// AfterHandling lets xqueue handle the request fully first (a pull
	// stamps its lease, a put_result posts to the LMS) and fails only the
	// answer: the outcome is unknown to the client.
	AfterHandling bool
	// Count is how many matching requests fail (0 means 1).
	Count int
	// Every makes the fault recurring: every Every-th matching request
	// fails, until ClearFaults (Count is then ignored).
	Every int
	// Trickle, with Body, sends the answer one byte per Trickle.
	Trickle time.Duration
	seen    int
}

// ClearFaults drops every pending and recurring fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// Inject queues a fault; faults fire in the order injected.
func (s *Server) Inject(f Fault) {
	if f.Count <= 0 {
		f.Count = 1
	}
	if f.Status == 0 && !f.Drop {
		f.Status = http.StatusOK
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// FailNext answers the next n requests (any endpoint) with HTTP status
// without handling them.
func (s *Server) FailNext(n, status int) {
	s.Inject(Fault{Status: status, Count: n})
}

// takeFault returns the first pending fault for endpoint, consuming one use.
func (s *Server) takeFault(endpoint string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Endpoint != "" && f.Endpoint != endpoint {
			continue
		}
		if f.Every > 0 {
			f.seen++
			if f.seen%f.Every != 0 {
				continue
			}
			s.stats.FaultsApplied++
			s.notify()
			c := *f
			return &c
		}
		f.Count--
		if f.Count <= 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		s.stats.FaultsApplied++
		s.notify()
		c := *f
		return &c
	}
	return nil
}

// pullsInFlight is how many get_submission views run now.
func (s *Server) pullsInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pullsNow
}

// PullsInFlight is how many get_submission calls xqueue is serving now.
func (s *Server) PullsInFlight() int { return s.pullsInFlight() }

// Steal plays another puller: it hands submission id out now, as a pull
// would (new key, fresh lease), to nobody in particular, and returns the
// new key. Clients holding an older key get "Incorrect key for submission".
func (s *Server) Steal(id int64) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub, ok := s.byID[id]
	if !ok {
		return "", fmt.Errorf("xqueuetest: no submission %d", id)
	}
	now := s.now()
	read := *sub
	read.pullTime = now
	read.pullKey = newKey(now.String() + "steal")
	read.pulls++
	s.save(sub, &read)
	return read.pullKey, nil
}
