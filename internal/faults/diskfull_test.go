package faults_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/certd-dev/certd/consumer"
	"github.com/certd-dev/certd/consumer/storage"
	"github.com/certd-dev/certd/control"
	"github.com/certd-dev/certd/internal/pipeline"
	"github.com/certd-dev/certd/internal/testenv"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// fullDisk is a file store that runs out of space and gets it back.
type fullDisk interface {
	store() storage.Store
	free(t *testing.T)
	kind() string
}

// tmpfsDisk is a real 2 MiB tmpfs, filled up with one file.
type tmpfsDisk struct {
	st          storage.Store
	dir, filler string
}

func (d *tmpfsDisk) store() storage.Store { return d.st }
func (d *tmpfsDisk) kind() string         { return "tmpfs (size=2m), filled" }
func (d *tmpfsDisk) free(t *testing.T) {
	if err := os.Remove(d.filler); err != nil {
		t.Fatal(err)
	}
}

// mountFull mounts a small tmpfs, stores the public key, and fills the
// rest. It returns nil where mounting is not allowed.
func mountFull(t *testing.T, e *batchEnv) fullDisk {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=2m"); err != nil {
		t.Logf("cannot mount a tmpfs here (%v): injecting ENOSPC instead", err)
		return nil
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	st, err := storage.Open(e.ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(e.ctx, consumer.PublicKeyKey(e.Signer.Fingerprint()), e.Signer.PublicKey(), "application/pgp-keys"); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	f.Close()
	return &tmpfsDisk{st: st, dir: dir, filler: filler}
}

// injectedDisk answers every Put with ENOSPC until freed.
type injectedDisk struct {
	storage.Store
	full atomic.Bool
}

func (d *injectedDisk) store() storage.Store { return d }
func (d *injectedDisk) kind() string         { return "injected ENOSPC" }
func (d *injectedDisk) free(*testing.T)      { d.full.Store(false) }
func (d *injectedDisk) Put(ctx context.Context, key string, data []byte, ct string) error {
	if d.full.Load() {
		return fmt.Errorf("storage put %q: write: %w", key, syscall.ENOSPC)
	}
	return d.Store.Put(ctx, key, data, ct)
}

// Fault 9: the file store's disk is full. The failure is transient: jobs
// are retried, then held (dead) for an operator, and nothing is answered
// to the LMS. When space returns, Requeue runs them and each submission is
// answered exactly once, with the uuids of its acceptance.
func TestFaultDiskFull(t *testing.T) {
	const n = 3
	e := newBatchEnv(t, 60*time.Second, pipeline.Options{AckWait: 5 * time.Second})
	disk := mountFull(t, e)
	if disk == nil {
		d := &injectedDisk{Store: e.Store}
		d.full.Store(true)
		disk = d
	}
	t.Logf("disk: %s", disk.kind())
	e.runBridge(t)
	e.runConsumer(t, testenv.NewHandler(t, e.Env, disk.store()), consumer.WithMaxAttempts(3), consumer.WithRetryDelay(50*time.Millisecond))

	updates, err := e.P.Records.Watch(e.ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	ids := submit(t, e.xs, n)
	dead := map[string]*certdv1.JobRecord{}
	for rec := range updates {
		switch rec.State {
		case certdv1.JobState_JOB_STATE_DEAD:
			dead[rec.Id] = rec
		case certdv1.JobState_JOB_STATE_RESULT_READY, certdv1.JobState_JOB_STATE_ANSWERED:
			t.Fatalf("job %s reached %s on a full disk", rec.Id, rec.State)
		}
		if len(dead) == n {
			break
		}
	}
	if len(dead) != n {
		t.Fatalf("%d of %d jobs held: %v", len(dead), n, e.ctx.Err())
	}
	var jobIDs []string
	for id, rec := range dead {
		jobIDs = append(jobIDs, id)
		if !strings.Contains(rec.LastError, "no space left on device") {
			t.Errorf("job %s held with %q; want the disk-full cause", id, rec.LastError)
		}
	}
	if cbs := e.xs.Callbacks(); len(cbs) != 0 {
		t.Errorf("%d LMS callbacks while the disk was full, want none (held, not answered as an error): %s", len(cbs), cbs[0].Body)
	}

	disk.free(t)
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	resp, err := control.NewService(e.P, control.WithLogger(testenv.Logger(t))).Requeue(ctx, &certdv1.RequeueRequest{Ids: jobIDs})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Skipped) != 0 {
		t.Fatalf("requeue skipped %v", resp.Skipped)
	}
	if _, err := e.xs.WaitCallbacks(e.ctx, n); err != nil {
		t.Fatal(err)
	}
	e.check(t, ids, disk.store())
	// Partial writes cut off by ENOSPC leave no temporary files behind
	// (storage lists only the public names, so look at the disk).
	if d, ok := disk.(*tmpfsDisk); ok {
		err := filepath.WalkDir(d.dir, func(path string, de os.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(de.Name(), ".") {
				t.Errorf("left behind on the full disk: %s", path)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
