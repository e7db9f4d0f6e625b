package storage

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Process-wide group-commit counters, for benchmarks and metrics.
var commitBatches, commitRequests, commitNanos atomic.Uint64

// CommitStats reports, for every file store of the process so far, the
// group commits made, the requests they served (each PutAll waits for
// three) and the time spent committing.
func CommitStats() (batches, requests uint64, took time.Duration) {
	return commitBatches.Load(), commitRequests.Load(), time.Duration(commitNanos.Load())
}

// committer makes the writes of concurrent PutAll calls durable together
// (group commit). A caller hands it the directories it wrote into and waits;
// the committer goroutine takes every request queued at that moment and
// makes them all durable at once: on Linux one syncfs(2) per file system in
// the batch, which flushes file data, new directory entries and renames in
// one call, instead of an fsync per file and directory. Requests that arrive
// during a commit form the next batch, so the busier the store, the more
// calls share one commit.
//
// The goroutine is owned by the committer: it starts when a request finds
// none running and stops as soon as the queue is empty, so an idle store
// runs no goroutine and needs no Close. The queue holds at most one
// request per blocked caller.
type committer struct {
	mu      sync.Mutex
	queue   []*commitReq
	running bool
}

type commitReq struct {
	dirs map[string]*openDir
	done chan error
}

// sync returns once everything written so far into dirs (and the files in
// them) is durable. The caller keeps the descriptors open until it returns.
func (c *committer) sync(dirs map[string]*openDir) error {
	r := &commitReq{dirs: dirs, done: make(chan error, 1)}
	c.mu.Lock()
	c.queue = append(c.queue, r)
	if !c.running {
		c.running = true
		go c.run()
	}
	c.mu.Unlock()
	return <-r.done
}

func (c *committer) run() {
	var batch []*commitReq
	for {
		c.mu.Lock()
		batch, c.queue = c.queue, batch[:0]
		if len(batch) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		t0 := time.Now()
		errs := commitBatch(batch)
		commitNanos.Add(uint64(time.Since(t0)))
		commitBatches.Add(1)
		commitRequests.Add(uint64(len(batch)))
		for _, r := range batch {
			var err error
			for _, d := range r.dirs {
				if err == nil {
					err = errs[d.dev]
				}
			}
			r.done <- err
		}
		clear(batch)
	}
}

// fsyncDirs fsyncs every directory of the batch once.
func fsyncDirs(batch []*commitReq) map[uint64]error {
	var errs map[uint64]error
	seen := map[int]bool{}
	for _, r := range batch {
		for _, d := range r.dirs {
			if seen[d.fd] {
				continue
			}
			seen[d.fd] = true
			if err := unix.Fsync(d.fd); err != nil {
				if errs == nil {
					errs = map[uint64]error{}
				}
				errs[d.dev] = fmt.Errorf("fsync directory: %w", err)
			}
		}
	}
	return errs
}
