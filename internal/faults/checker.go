// Package faults checks that certd answered a batch of LMS submissions
// exactly once, whatever went wrong while it ran. Every fault test in the
// repository (in-process here, split processes in cmd/certd) ends with the
// same Check.
//
// Invariants Check asserts, for a batch of xqueue submissions:
//   - every submission got exactly one LMS callback from the xqueue stand-in,
//     and it is a success answer (no error, the learner's username);
//   - no callback arrived for a submission outside the batch;
//   - the uuids in each answer are the ones the job record carried when the
//     job was accepted (a Recorder watched the records from before the
//     first submission), so redeliveries never minted new ones;
//   - storage holds exactly Certificate.pdf under downloads/<download uuid>/
//     and Certificate.pdf.sig, valid.html and verify.html under
//     cert/<verify uuid>/ for each answer (and its credential.json when
//     credentials are on), plus cert/keys/*.asc and the revocation lists
//     cert/status/*.json, and nothing else (no orphans from abandoned
//     attempts);
//   - every stored PDF passes `gpg --verify` against its detached signature
//     with the signer's public key.
package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/certd-dev/certd/bridge/xqueuetest"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// FileName is the certificate's file name certd uses by default.
const FileName = "Certificate.pdf"

// Lister reads what certd stored; consumer/storage.Store satisfies it.
type Lister interface {
	List(ctx context.Context, prefix string) ([]string, error)
	Get(ctx context.Context, key string) ([]byte, error)
}

// Callbacks is what the checker needs of the xqueue stand-in.
type Callbacks interface {
	Callbacks() []xqueuetest.Callback
}

var _ Callbacks = (*xqueuetest.Server)(nil)

// UUIDs are the two uuids of one certificate.
type UUIDs struct{ Download, Verify string }

// Recorder remembers the uuids each job record carried when it was first
// seen, i.e. at acceptance when the Recorder runs from before the batch.
type Recorder struct {
	mu       sync.Mutex
	accepted map[string]UUIDs
	done     chan struct{}
}

// Watcher streams job records; pipeline.Records satisfies it.
type Watcher interface {
	Watch(ctx context.Context, replay bool) (<-chan *certdv1.JobRecord, error)
}

// Record starts watching records until ctx ends. Start it before the first
// submission so the first version of every record is seen.
func Record(ctx context.Context, w Watcher) (*Recorder, error) {
	ch, err := w.Watch(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("faults: watch job records: %w", err)
	}
	r := &Recorder{accepted: map[string]UUIDs{}, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for rec := range ch {
			r.mu.Lock()
			if _, ok := r.accepted[rec.Id]; !ok {
				r.accepted[rec.Id] = UUIDs{rec.DownloadUuid, rec.VerifyUuid}
			}
			r.mu.Unlock()
		}
	}()
	return r, nil
}

// Accepted returns the uuids a job had when first seen.
func (r *Recorder) Accepted(jobID string) (UUIDs, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, ok := r.accepted[jobID]
	return u, ok
}

// Batch is what was submitted and where its results should be.
type Batch struct {
	// IDs are the xqueue submission ids of the batch.
	IDs []int64
	// Accepted maps a job id ("xq-<submission id>") to its uuids at
	// acceptance; usually a Recorder.
	Accepted interface {
		Accepted(jobID string) (UUIDs, bool)
	}
	XQueue    Callbacks
	Store     Lister
	PublicKey []byte // armored public key of the signer
	// GPG is the gpg binary (default: gpg on PATH).
	GPG string
}

// Report counts what Check found.
type Report struct {
	Submitted  int
	Answered   int // submissions with at least one success callback
	Duplicates int // callbacks beyond the first, over all submissions
	Lost       int // submissions with no callback
	Failed     int // submissions whose (first) callback is an error answer
	Unknown    int // callbacks for submissions outside the batch
	Orphans    int // stored files no answer accounts for
	Missing    int // files an answer needs that are not stored
	BadUUIDs   int // answers whose uuids differ from those at acceptance
	BadSigs    int // PDFs that fail gpg --verify
	Problems   []string
}

// OK reports whether the batch was answered exactly once with nothing wrong.
func (r Report) OK() bool {
	return r.Answered == r.Submitted && r.Duplicates == 0 && r.Lost == 0 && r.Failed == 0 &&
		r.Unknown == 0 && r.Orphans == 0 && r.Missing == 0 && r.BadUUIDs == 0 && r.BadSigs == 0 && len(r.Problems) == 0
}

// Row is the report as one line of the fault table.
func (r Report) Row() string {
	return fmt.Sprintf("submitted=%d answered=%d duplicates=%d lost=%d orphans=%d failed=%d unknown=%d missing=%d bad_uuids=%d bad_sigs=%d",
		r.Submitted, r.Answered, r.Duplicates, r.Lost, r.Orphans, r.Failed, r.Unknown, r.Missing, r.BadUUIDs, r.BadSigs)
}

// maxProblems bounds the problems listed in a report.
const maxProblems = 50

func (r *Report) problem(format string, args ...any) {
	if len(r.Problems) < maxProblems {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// answer is the success or error body certd posts to xqueue.
type answer struct {
	Action       string `json:"action"`
	DownloadUUID string `json:"download_uuid"`
	VerifyUUID   string `json:"verify_uuid"`
	Username     string `json:"username"`
	URL          string `json:"url"`
	Error        string `json:"error"`
}

// Check compares what the stand-in and storage saw with the batch. An error
// means the check itself could not run (storage unreadable, no gpg).
func Check(ctx context.Context, b Batch) (Report, error) {
	rep := Report{Submitted: len(b.IDs)}
	inBatch := map[int64]bool{}
	for _, id := range b.IDs {
		inBatch[id] = true
	}
	byID := map[int64][]xqueuetest.Callback{}
	for _, cb := range b.XQueue.Callbacks() {
		if !inBatch[cb.SubmissionID] {
			rep.Unknown++
			rep.problem("callback for submission %d, which is not in the batch", cb.SubmissionID)
			continue
		}
		byID[cb.SubmissionID] = append(byID[cb.SubmissionID], cb)
	}
	want := map[string]bool{}
	optional := map[string]bool{}
	var pdfs []UUIDs
	for _, id := range b.IDs {
		cbs := byID[id]
		switch {
		case len(cbs) == 0:
			rep.Lost++
			rep.problem("submission %d: no LMS callback", id)
			continue
		case len(cbs) > 1:
			rep.Duplicates += len(cbs) - 1
			rep.problem("submission %d: %d LMS callbacks", id, len(cbs))
		}
		var a answer
		if err := json.Unmarshal([]byte(cbs[0].Body), &a); err != nil {
			rep.Failed++
			rep.problem("submission %d: answer is not JSON: %v", id, err)
			continue
		}
		if a.Error != "" || a.Username == "" {
			rep.Failed++
			rep.problem("submission %d: error answer %s", id, cbs[0].Body)
			continue
		}
		rep.Answered++
		u := UUIDs{a.DownloadUUID, a.VerifyUUID}
		jobID := "xq-" + strconv.FormatInt(id, 10)
		if acc, ok := b.Accepted.Accepted(jobID); !ok || acc != u {
			rep.BadUUIDs++
			rep.problem("submission %d: answer uuids %v, at acceptance %v (seen %v)", id, u, acc, ok)
		}
		for _, cb := range cbs[1:] {
			var d answer
			if json.Unmarshal([]byte(cb.Body), &d) != nil || (UUIDs{d.DownloadUUID, d.VerifyUUID}) != u {
				rep.BadUUIDs++
				rep.problem("submission %d: a later callback carries other uuids: %s", id, cb.Body)
			}
		}
		if !strings.HasSuffix(a.URL, "/downloads/"+u.Download+"/"+FileName) {
			rep.problem("submission %d: url %q does not name its download uuid", id, a.URL)
		}
		for _, k := range expectedKeys(u) {
			want[k] = true
		}
		optional[credentialKey(u)] = true
		pdfs = append(pdfs, u)
	}

	stored := map[string]bool{}
	for _, prefix := range []string{"downloads/", "cert/"} {
		keys, err := b.Store.List(ctx, prefix)
		if err != nil {
			return rep, fmt.Errorf("faults: list %s: %w", prefix, err)
		}
		for _, k := range keys {
			stored[k] = true
		}
	}
	for k := range stored {
		if want[k] || optional[k] {
			continue
		}
		if strings.HasPrefix(k, "cert/keys/") && strings.HasSuffix(k, ".asc") {
			continue
		}
		if strings.HasPrefix(k, "cert/status/") && strings.HasSuffix(k, ".json") {
			continue // the revocation list
		}
		rep.Orphans++
		rep.problem("orphaned file %s", k)
	}
	for k := range want {
		if !stored[k] {
			rep.Missing++
			rep.problem("missing file %s", k)
		}
	}
	if rep.Missing > 0 || len(pdfs) == 0 {
		return rep, nil
	}
	bad, err := verifyAll(ctx, b, pdfs)
	if err != nil {
		return rep, err
	}
	rep.BadSigs = len(bad)
	for _, m := range bad {
		rep.problem("%s", m)
	}
	return rep, nil
}

// credentialKey is the certificate's Open Badges credential: there when
// credentials are on (its own tests check it), never an orphan.
func credentialKey(u UUIDs) string { return "cert/" + u.Verify + "/credential.json" }

func expectedKeys(u UUIDs) []string {
	return []string{
		"downloads/" + u.Download + "/" + FileName,
		"cert/" + u.Verify + "/" + FileName + ".sig",
		"cert/" + u.Verify + "/valid.html",
		"cert/" + u.Verify + "/verify.html",
	}
}

// verifyAll runs gpg --verify on every PDF with one throwaway keyring.
func verifyAll(ctx context.Context, b Batch, certs []UUIDs) ([]string, error) {
	gpg := b.GPG
	if gpg == "" {
		p, err := exec.LookPath("gpg")
		if err != nil {
			return nil, fmt.Errorf("faults: gpg not found (apt-get install gnupg): %w", err)
		}
		gpg = p
	}
	dir, err := os.MkdirTemp("", "certd-faults-") // short: gpg socket paths are limited
	if err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	defer os.RemoveAll(dir)
	home := filepath.Join(dir, "g")
	if err := os.Mkdir(home, 0o700); err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	run := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, gpg, append([]string{"--homedir", home, "--batch", "--no-tty", "--no-autostart"}, args...)...)
		return cmd.CombinedOutput()
	}
	keyFile := filepath.Join(dir, "key.asc")
	if err := os.WriteFile(keyFile, b.PublicKey, 0o600); err != nil {
		return nil, fmt.Errorf("faults: %w", err)
	}
	if out, err := run("--import", keyFile); err != nil {
		return nil, fmt.Errorf("faults: gpg --import: %v: %s", err, out)
	}
	var bad []string
	pdf, sig := filepath.Join(dir, "c.pdf"), filepath.Join(dir, "c.pdf.sig")
	for _, u := range certs {
		for _, f := range []struct{ key, path string }{
			{"downloads/" + u.Download + "/" + FileName, pdf},
			{"cert/" + u.Verify + "/" + FileName + ".sig", sig},
		} {
			data, err := b.Store.Get(ctx, f.key)
			if err != nil {
				return nil, fmt.Errorf("faults: read %s: %w", f.key, err)
			}
			if err := os.WriteFile(f.path, data, 0o600); err != nil {
				return nil, fmt.Errorf("faults: %w", err)
			}
		}
		if out, err := run("--verify", sig, pdf); err != nil {
			bad = append(bad, fmt.Sprintf("gpg --verify of downloads/%s: %v: %s", u.Download, err, firstLine(out)))
		}
	}
	slices.Sort(bad)
	return bad, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
