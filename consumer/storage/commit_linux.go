//go:build linux && !certd_fsync

package storage

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// syncEachFile is false: syncfs in the committer covers the file data.
const syncEachFile = false

// commitBatch calls syncfs once per file system that the batch wrote to
// and returns the error of each file system that failed.
func commitBatch(batch []*commitReq) map[uint64]error {
	fds := make(map[uint64]int, 1)
	for _, r := range batch {
		for _, d := range r.dirs {
			if _, ok := fds[d.dev]; !ok {
				fds[d.dev] = d.fd
			}
		}
	}
	var errs map[uint64]error
	for dev, fd := range fds {
		if err := unix.Syncfs(fd); err != nil {
			if errs == nil {
				errs = map[uint64]error{}
			}
			errs[dev] = fmt.Errorf("syncfs: %w", err)
		}
	}
	return errs
}
