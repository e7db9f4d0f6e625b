package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fileStore keeps objects as files under a root directory.
//
// Guarantees:
//   - Every access goes through os.Root, so no operation reads, writes,
//     creates or deletes anything outside the root: symbolic links inside the
//     root that point outside it (or are absolute) make the operation fail
//     instead of being followed. Symbolic links that stay inside the root
//     are followed, except that Put replaces a symlink at the key itself
//     with a regular file and Delete never removes symlinked directories.
//   - Put and PutAll write a temporary file in the target directory, make it
//     durable, rename it over the key and make the rename durable: readers
//     see the old or the new object, never a partial one, and concurrent
//     Puts of one key leave exactly one of the written objects. Durability
//     is a group commit shared by concurrent calls (see committer). For a
//     new certificate (PutAll whose files but the last go into directories
//     it creates) the data and the names of those files are made durable
//     together, before the last file is renamed into place: nothing is
//     replaced (a file a concurrent delivery of the same job put there in
//     the meantime makes the call commit first), and nothing links to them
//     until the last file exists. PutAll returns success only once every
//     file and every new directory entry is durable. Files are mode 0644,
//     directories are created as needed (0755 before umask).
//   - A crash leaves at most hidden temporary files; writing into an
//     existing directory (a job delivered again) or deleting from it
//     removes other processes' temporary files there older than a minute.
//   - Delete removes the now-empty parent directories of the object, up to
//     but not including the top-level downloads/ and cert/ directories.
//   - List reports regular files only; it skips symbolic links, hidden
//     (dot) files such as in-progress temporary files, and names that are
//     not valid keys.
//
// The root is opened on every operation, so an operator may replace the
// directory while the process runs.
type fileStore struct {
	dir    string
	commit committer
}

func openFile(u *url.URL, o options) (Store, error) {
	if u.Host != "" && u.Host != "localhost" {
		return nil, fmt.Errorf("storage open %s: file URL must have no host (file:///abs/dir)", u.Redacted())
	}
	dir := u.Path
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("storage open %s: root must be an absolute path", u.Redacted())
	}
	dir = filepath.Clean(dir)
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("storage open %s: %w", u.Redacted(), err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("storage open %s: root is not a directory", u.Redacted())
	}
	return &store{b: &fileStore{dir: dir}, log: o.logger.With("store", "file", "root", dir)}, nil
}

func (s *fileStore) openRoot() (*os.Root, error) { return os.OpenRoot(s.dir) }

// conflict reports errors meaning a file or directory is in the way of key.
func conflict(err error) bool {
	return errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY)
}

func (s *fileStore) put(ctx context.Context, key string, data []byte, ct string) error {
	_, err := s.write(ctx, []File{{Key: key, Data: data, ContentType: ct}})
	return err
}

func (s *fileStore) putAll(ctx context.Context, files []File) error {
	key, err := s.write(ctx, files)
	return wrap("put", key, err)
}

// openDir is a directory of the files being written, open for the *at
// system calls.
type openDir struct {
	f       *os.File
	fd      int
	dev     uint64
	seq     uint64 // order of opening, process-wide (see commitBatch)
	created bool   // made by this call: it held no object before
}

// dirSeq numbers opened directories in the order they were opened.
var dirSeq atomic.Uint64

// staged is a file written to a temporary name in its directory.
type staged struct {
	dir       *openDir
	tmp, name string
	done      bool // renamed to name
}

// write stores files (see PutAll) and returns the key an error is about.
//
// Cost per call: the root is opened once, each distinct directory is
// created and opened once, each file costs one create, write, close and
// rename relative to its directory's descriptor, and the whole call waits
// for up to three group commits (temporary files, then all but the last
// file, then the last file), each shared with concurrent calls; a new
// certificate needs only the last two.
func (s *fileStore) write(ctx context.Context, files []File) (string, error) {
	root, err := os.OpenRoot(s.dir)
	if err != nil {
		return files[0].Key, err
	}
	defer root.Close()

	dirs := make(map[string]*openDir, 2)
	defer func() {
		for _, d := range dirs {
			d.f.Close()
		}
	}()
	st := make([]staged, 0, len(files))
	defer func() {
		for _, f := range st {
			if !f.done {
				unix.Unlinkat(f.dir.fd, f.tmp, 0)
			}
		}
	}()
	for _, f := range files {
		dir, name := path.Split(f.Key)
		dir = strings.TrimSuffix(dir, "/")
		var d *openDir
		var tmp string
		// A concurrent Delete may remove a just-created empty directory:
		// then create and open it again.
		for attempt := 0; ; attempt++ {
			if d = dirs[dir]; d == nil {
				if d, err = openOrMkdir(root, dir); err != nil {
					return f.Key, err
				}
				dirs[dir] = d
				if d.created && syncEachFile() {
					// without syncfs, the entries of new directories are
					// made durable by fsyncing their parents
					if err := openParents(root, dir, dirs); err != nil {
						return f.Key, err
					}
				}
				if !d.created {
					sweepTemporary(root, dir)
				}
			}
			tmp, err = createIn(d, f.Data)
			if err == nil {
				break
			}
			if !errors.Is(err, syscall.ENOENT) || attempt == 10 || d.holds(st) {
				return f.Key, err
			}
			d.f.Close()
			delete(dirs, dir)
		}
		st = append(st, staged{dir: d, tmp: tmp, name: name})
	}
	last := len(st) - 1
	// Round 1: the data of the temporary files, before any of them
	// replaces an object. It is skipped when every file but the last goes
	// into a directory this call created (a new certificate): no object is
	// replaced there, the round 2 commit makes their data and names (and
	// the last file's data) durable together, and until the last file
	// exists nothing links to them.
	synced := last == 0 || !allCreated(st[:last])
	if synced {
		if err := s.commit.sync(dirs); err != nil {
			return files[0].Key, err
		}
	}
	if err := ctx.Err(); err != nil {
		return files[0].Key, err
	}
	for i := range st[:last] {
		if !synced {
			// Round 1 was skipped on the premise that nothing is replaced.
			// A concurrent delivery of the same job may have put a file
			// here since: then its durable file must not be replaced by
			// data not yet durable, so commit first after all.
			err := st[i].renameNoReplace()
			if err == nil {
				continue
			}
			if !errors.Is(err, errWouldReplace) {
				return files[i].Key, err
			}
			if err := s.commit.sync(dirs); err != nil {
				return files[0].Key, err
			}
			synced = true
		}
		if err := st[i].rename(); err != nil {
			return files[i].Key, err
		}
	}
	if last > 0 {
		// Round 2: all but the last file are in place.
		if err := s.commit.sync(dirs); err != nil {
			return files[0].Key, err
		}
	}
	if err := st[last].rename(); err != nil {
		return files[last].Key, err
	}
	// Round 3: the last file is in place.
	if err := s.commit.sync(dirs); err != nil {
		return files[last].Key, err
	}
	return "", nil
}

// allCreated reports whether every file of st goes into a directory that
// the call created.
func allCreated(st []staged) bool {
	for _, f := range st {
		if !f.dir.created {
			return false
		}
	}
	return true
}

// holds reports whether a file of st was written in d.
func (d *openDir) holds(st []staged) bool {
	for _, f := range st {
		if f.dir == d {
			return true
		}
	}
	return false
}

func (f *staged) rename() error {
	if err := unix.Renameat(f.dir.fd, f.tmp, f.dir.fd, f.name); err != nil {
		if conflict(err) {
			return fmt.Errorf("%w: a directory is in the way: %v", ErrInvalidKey, err)
		}
		return err
	}
	f.done = true
	return nil
}

// errWouldReplace means renameNoReplace found an object at the name.
var errWouldReplace = errors.New("an object exists at the name")

// renameNoReplace renames f into place unless something exists at its
// name (errWouldReplace). Where the system cannot rename without
// replacing, it reports errWouldReplace, so the caller commits first.
func (f *staged) renameNoReplace() error {
	err := renameNoReplace(f.dir.fd, f.tmp, f.name)
	switch {
	case err == nil:
		f.done = true
		return nil
	case errors.Is(err, syscall.EEXIST), errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOSYS):
		return errWouldReplace
	}
	if conflict(err) {
		return fmt.Errorf("%w: a directory is in the way: %v", ErrInvalidKey, err)
	}
	return err
}

// openParents opens the ancestors of the new directory dir, up to and
// including the root, into dirs, so that the committer fsyncs the
// directories holding the new entries.
func openParents(root *os.Root, dir string, dirs map[string]*openDir) error {
	for p := dir; p != "."; {
		p = path.Dir(p)
		if dirs[p] != nil {
			continue
		}
		f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			return err
		}
		d := &openDir{f: f, fd: int(f.Fd())}
		var stat unix.Stat_t
		if err := unix.Fstat(d.fd, &stat); err != nil {
			f.Close()
			return err
		}
		d.dev, d.seq = uint64(stat.Dev), dirSeq.Add(1)
		dirs[p] = d
	}
	return nil
}

// staleTemporary is the age after which another process's temporary file
// is taken for the remains of a crash: a live writer renames its files
// within a few group commits.
const staleTemporary = time.Minute

// sweepTemporary removes from d the temporary files that a crashed writer
// left (another process's, older than staleTemporary). Only deliveries of
// the same job write into a certificate's directories, so this runs when a
// job is delivered again; it is best effort. Should a live but stalled
// writer lose its file, its rename fails and its job is retried.
func sweepTemporary(root *os.Root, dir string) {
	f, err := root.Open(dir)
	if err != nil {
		return
	}
	names, _ := f.Readdirnames(64)
	f.Close()
	for _, n := range names {
		if !strings.HasPrefix(n, ".certd-tmp-") || strings.HasPrefix(n, tmpPrefix) {
			continue
		}
		p := path.Join(dir, n)
		fi, err := root.Lstat(p)
		if err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > staleTemporary {
			root.Remove(p)
		}
	}
}

// openOrMkdir opens the directory dir of the root, creating it (and its
// parents) when missing. Symbolic links inside the root are followed as
// os.Root follows them; links leaving the root fail.
func openOrMkdir(root *os.Root, dir string) (*openDir, error) {
	created := false
	f, err := root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	// A concurrent Delete may remove the directory between Mkdir and
	// OpenFile: then make it again.
	for attempt := 0; attempt < 10 && errors.Is(err, fs.ErrNotExist); attempt++ {
		// Usually only the last segment is missing: try it first.
		err = root.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrNotExist) {
			err = root.MkdirAll(dir, 0o755)
		}
		created = err == nil
		if err != nil && !errors.Is(err, fs.ErrExist) {
			if conflict(err) {
				return nil, fmt.Errorf("%w: a file is in the way: %v", ErrInvalidKey, err)
			}
			return nil, err
		}
		f, err = root.OpenFile(dir, os.O_RDONLY|syscall.O_DIRECTORY, 0)
	}
	if err != nil {
		if conflict(err) {
			return nil, fmt.Errorf("%w: a file is in the way: %v", ErrInvalidKey, err)
		}
		return nil, err
	}
	// Fd is safe here: a directory is never in the poller.
	d := &openDir{f: f, fd: int(f.Fd()), created: created}
	var stat unix.Stat_t
	if err := unix.Fstat(d.fd, &stat); err != nil {
		f.Close()
		return nil, err
	}
	d.dev = uint64(stat.Dev)
	d.seq = dirSeq.Add(1)
	return d, nil
}

var (
	tmpSeq    atomic.Uint64
	tmpPrefix = func() string {
		var b [6]byte
		rand.Read(b[:])
		return ".certd-tmp-" + hex.EncodeToString(b[:]) + "-"
	}()
	// umaskHides reports whether the process umask takes bits of 0644
	// away, so new files need a chmod. It is read once per process.
	umaskHides = sync.OnceValue(func() bool {
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return true
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Umask:"); ok {
				m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
				return err != nil || m&0o644 != 0
			}
		}
		return true
	})
)

// createIn writes data to a new hidden temporary file in d and returns its
// name. The file is mode 0644 and not yet synced.
func createIn(d *openDir, data []byte) (string, error) {
	name := tmpPrefix + strconv.FormatUint(tmpSeq.Add(1), 36)
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return "", err
	}
	err = writeAll(fd, data)
	if err == nil && syncEachFile() {
		err = unix.Fsync(fd)
	}
	if err == nil && umaskHides() {
		err = unix.Fchmod(fd, 0o644)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err != nil {
		unix.Unlinkat(d.fd, name, 0)
		return "", err
	}
	return name, nil
}

func writeAll(fd int, data []byte) error {
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		data = data[n:]
	}
	return nil
}

func (s *fileStore) get(_ context.Context, key string) ([]byte, error) {
	root, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// O_NONBLOCK: a FIFO planted in the root must not hang the reader.
	f, err := root.OpenFile(key, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, ErrNotFound // a directory (or device) is not an object
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	return data, nil
}

func (s *fileStore) delete(_ context.Context, key string) error {
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()
	fi, err := root.Lstat(key)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil
	case err != nil:
		return err
	case fi.IsDir():
		return nil // not an object; never remove directories by key
	}
	if err := root.Remove(key); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	// A crashed writer's temporary files would keep the directory.
	sweepTemporary(root, path.Dir(key))
	// Remove now-empty parents, keeping the top-level namespace directories.
	// rmdir fails on a non-empty directory, so a concurrent Put is safe (it
	// re-creates a directory removed under it).
	for d := path.Dir(key); strings.Contains(d, "/"); d = path.Dir(d) {
		fi, err := root.Lstat(d)
		if err != nil || !fi.IsDir() {
			break
		}
		if err := root.Remove(d); err != nil {
			break
		}
	}
	return nil
}

func (s *fileStore) list(ctx context.Context, prefix string) ([]string, error) {
	root, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	fsys := root.FS()

	var starts []string
	switch {
	case prefix == "":
		starts = []string{"cert", "downloads"}
	case strings.HasSuffix(prefix, "/"):
		starts = []string{strings.TrimSuffix(prefix, "/")}
	default:
		starts = []string{path.Dir(prefix)}
	}
	keys := []string{}
	for _, start := range starts {
		err := fs.WalkDir(fsys, start, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == start && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)) {
					return fs.SkipAll
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if d.IsDir() {
				if p != start && (strings.HasPrefix(path.Base(p), ".") ||
					!(strings.HasPrefix(p+"/", prefix) || strings.HasPrefix(prefix, p+"/"))) {
					return fs.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || !strings.HasPrefix(p, prefix) || CheckKey(p) != nil {
				return nil
			}
			keys = append(keys, p)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(keys)
	return keys, nil
}
