package faults_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/certd-dev/certd/bridge/xqueue"
	"github.com/certd-dev/certd/internal/faults"
	"github.com/certd-dev/certd/internal/pipeline"
)

// fixedUUIDs is an Accepted source that lies about one job.
type fixedUUIDs struct {
	real  *faults.Recorder
	jobID string
}

func (f fixedUUIDs) Accepted(id string) (faults.UUIDs, bool) {
	if id == f.jobID {
		return faults.UUIDs{Download: "00000000000000000000000000000000", Verify: "00000000000000000000000000000000"}, true
	}
	return f.real.Accepted(id)
}

// The checker passes a clean batch and catches each way a batch can go
// wrong: a second callback, a submission never answered, a callback for
// a submission outside the batch, a stray file, uuids that changed since
// acceptance and a PDF that no longer matches its signature.
func TestCheckerCatchesDuplicatesLossAndOrphans(t *testing.T) {
	e := newBatchEnv(t, 60*time.Second, pipeline.Options{AckWait: 2 * time.Second})
	stopBridge := e.runBridge(t)
	e.runConsumer(t, nil)
	ids := submit(t, e.xs, 3)
	cbs, err := e.xs.WaitCallbacks(e.ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rep := e.check(t, ids, nil); rep.Answered != 3 {
		t.Fatalf("clean batch: %s", rep.Row())
	}
	stopBridge()

	check := func(b faults.Batch) faults.Report {
		t.Helper()
		if b.IDs == nil {
			b.IDs = ids
		}
		if b.Accepted == nil {
			b.Accepted = e.rec
		}
		b.XQueue, b.Store, b.PublicKey = e.xs, e.Store, e.Signer.PublicKey()
		rep, err := faults.Check(e.ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK() {
			t.Errorf("checker passed a bad batch: %s", rep.Row())
		}
		return rep
	}

	// uuids other than those at acceptance.
	if rep := check(faults.Batch{Accepted: fixedUUIDs{e.rec, "xq-" + itoa(ids[0])}}); rep.BadUUIDs != 1 {
		t.Errorf("changed uuids: %s", rep.Row())
	}
	// A submission left out of the batch: its callback is unknown and its
	// files are orphans.
	if rep := check(faults.Batch{IDs: ids[1:]}); rep.Unknown != 1 || rep.Orphans != 4 || rep.Answered != 2 {
		t.Errorf("callback outside the batch: %s", rep.Row())
	}

	// A second put_result with the same key reaches the LMS again.
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	if err := e.xq.PutResult(ctx, xqueue.Header{SubmissionID: cbs[0].SubmissionID, SubmissionKey: cbs[0].Key}, []byte(cbs[0].Body)); err != nil {
		t.Fatal(err)
	}
	if rep := check(faults.Batch{}); rep.Duplicates != 1 || rep.Answered != 3 {
		t.Errorf("duplicate: %s", rep.Row())
	}

	// Loss: a submission no bridge pulls.
	lost := submit(t, e.xs, 1)
	if rep := check(faults.Batch{IDs: append(append([]int64{}, ids...), lost...)}); rep.Lost != 1 {
		t.Errorf("loss: %s", rep.Row())
	}

	// An orphan: a certificate file no answer names.
	if err := e.Store.Put(ctx, "downloads/0123456789abcdef0123456789abcdef/Certificate.pdf", []byte("%PDF-1.7"), "application/pdf"); err != nil {
		t.Fatal(err)
	}
	if rep := check(faults.Batch{}); rep.Orphans != 1 {
		t.Errorf("orphan: %s", rep.Row())
	}
	if err := e.Store.Delete(ctx, "downloads/0123456789abcdef0123456789abcdef/Certificate.pdf"); err != nil {
		t.Fatal(err)
	}

	// A PDF changed after signing fails gpg --verify.
	var a struct {
		DownloadUUID string `json:"download_uuid"`
	}
	if err := cbs[1].Decode(&a); err != nil {
		t.Fatal(err)
	}
	key := "downloads/" + a.DownloadUUID + "/Certificate.pdf"
	pdf, err := e.Store.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.Put(ctx, key, append(pdf, '\n'), "application/pdf"); err != nil {
		t.Fatal(err)
	}
	if rep := check(faults.Batch{}); rep.BadSigs != 1 {
		t.Errorf("tampered PDF: %s", rep.Row())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
