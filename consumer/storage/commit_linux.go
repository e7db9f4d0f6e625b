//go:build linux && !certd_fsync

package storage

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// syncfsReportsErrors reports whether the kernel's syncfs returns
// writeback errors (Linux 5.8 and later); before, it returned success even
// when data was lost, so certd fsyncs each file and directory instead.
var syncfsReportsErrors = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 8)
})

// kernelAtLeast reports whether a release such as "6.1.0-18-amd64" is at
// least major.minor.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// syncEachFile is false where syncfs reports errors: syncfs in the
// committer covers the file data.
func syncEachFile() bool { return !syncfsReportsErrors() }

// commitBatch calls syncfs once per file system that the batch wrote to
// and returns the error of each file system that failed.
//
// syncfs reports a writeback error (Linux 5.8 and later) only to a
// descriptor opened before the error happened. Each file system is
// therefore synced through the directory of the batch opened first: every
// write of the batch came after that, so an error losing any of them is
// reported (an older error may be reported again, which only fails a
// commit that could have succeeded; it is retried).
func commitBatch(batch []*commitReq) map[uint64]error {
	if !syncfsReportsErrors() {
		return fsyncDirs(batch)
	}
	first := make(map[uint64]*openDir, 1)
	for _, r := range batch {
		for _, d := range r.dirs {
			if f, ok := first[d.dev]; !ok || d.seq < f.seq {
				first[d.dev] = d
			}
		}
	}
	var errs map[uint64]error
	for dev, d := range first {
		if err := unix.Syncfs(d.fd); err != nil {
			if errs == nil {
				errs = map[uint64]error{}
			}
			errs[dev] = fmt.Errorf("syncfs: %w", err)
		}
	}
	return errs
}

// renameNoReplace renames old to new in the directory dirfd, failing with
// EEXIST if new exists.
func renameNoReplace(dirfd int, old, new string) error {
	return unix.Renameat2(dirfd, old, dirfd, new, unix.RENAME_NOREPLACE)
}
