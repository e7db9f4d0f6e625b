//go:build unix && !linux

package s3test

import "syscall"

// sysProcAttr puts versitygw in its own process group so stopping kills
// everything it started.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// hasXattrs assumes extended attributes are available outside Linux.
func hasXattrs(string) bool { return true }
