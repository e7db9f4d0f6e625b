package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestAllAgainstXqueue: `certd all` on its embedded NATS, pulling from an
// xqueue that speaks the protocol, answers every job exactly once with files
// that verify with GnuPG, and exits 0 when stopped.
func TestAllAgainstXqueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newSplitEnv(t, ctx)
	const n = 12
	ids := e.submitJobs(n)
	all := runBackground(t, "all", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--xqueue-url", e.xs.URL(), "--xqueue-user", splitXQueueUser, "--xqueue-password", splitXQueuePassword,
		"--poll-interval", "20ms", "--storage", "file://"+e.www, "--signing-key", e.key, "--download-url", downloadBase,
		"--http-addr", freeAddr(t), "--grpc-addr", freeAddr(t))
	if _, err := e.xs.WaitCallbacks(ctx, n); err != nil {
		t.Fatal(err)
	}
	if code := all.stop(t); code != 0 {
		t.Errorf("certd all exited %d after stop", code)
	}
	e.checkAnsweredOnce(t, ids)
	if p := e.xs.Pending(); len(p) != 0 {
		t.Errorf("%d submissions still pending in xqueue", len(p))
	}
}
