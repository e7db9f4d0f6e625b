package storage

import (
	"sync"
)

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
		errs := commitBatch(batch)
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
