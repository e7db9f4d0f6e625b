//go:build !linux || certd_fsync

package storage

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// syncEachFile is true: without syncfs each file is fsynced as it is written
// and the committer fsyncs the directories.
const syncEachFile = true

// commitBatch fsyncs every directory of the batch once.
func commitBatch(batch []*commitReq) map[uint64]error {
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

// renameNoReplace is not available: the caller commits and then renames.
func renameNoReplace(dirfd int, old, new string) error { return unix.ENOSYS }
