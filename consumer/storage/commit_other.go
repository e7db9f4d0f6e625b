//go:build !linux || certd_fsync

package storage

import "golang.org/x/sys/unix"

// syncEachFile is true: without syncfs each file is fsynced as it is written
// and the committer fsyncs the directories.
func syncEachFile() bool { return true }

// commitBatch fsyncs every directory of the batch once.
func commitBatch(batch []*commitReq) map[uint64]error { return fsyncDirs(batch) }

// renameNoReplace is not available: the caller commits and then renames.
func renameNoReplace(dirfd int, old, new string) error { return unix.ENOSYS }
