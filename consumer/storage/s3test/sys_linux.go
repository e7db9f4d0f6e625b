package s3test

import "syscall"

// sysProcAttr puts versitygw in its own process group (so stopping kills
// everything it started) and has the kernel kill it if the test binary dies
// without cleaning up.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// hasXattrs reports whether dir's file system stores user extended
// attributes, which versitygw's posix backend uses for object metadata.
func hasXattrs(dir string) bool {
	err := syscall.Setxattr(dir, "user.certd.s3test.probe", []byte("1"), 0)
	if err != nil {
		return false
	}
	syscall.Removexattr(dir, "user.certd.s3test.probe")
	return true
}
