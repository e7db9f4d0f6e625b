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
	"strings"
	"syscall"
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
//   - Put writes a temporary file in the target directory, fsyncs it, renames
//     it over the key and fsyncs the directory: readers see the old or the
//     new object, never a partial one, and concurrent Puts of one key leave
//     exactly one of the written objects. Files are mode 0644, directories
//     are created as needed (0755 before umask).
//   - Delete removes the now-empty parent directories of the object, up to
//     but not including the top-level downloads/ and cert/ directories.
//   - List reports regular files only; it skips symbolic links, hidden
//     (dot) files such as in-progress temporary files, and names that are
//     not valid keys.
//
// The root is opened on every operation, so an operator may replace the
// directory while the process runs.
type fileStore struct {
	dir string
}

const tmpPrefix = ".certd-tmp-"

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

func (s *fileStore) put(ctx context.Context, key string, data []byte, _ string) error {
	root, err := s.openRoot()
	if err != nil {
		return err
	}
	defer root.Close()

	dir := path.Dir(key)
	f, tmp, err := createTemp(root, dir)
	if err != nil {
		return err
	}
	committed := false
	defer func() {
		if !committed {
			f.Close()
			root.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := root.Rename(tmp, key); err != nil {
		if conflict(err) {
			return fmt.Errorf("%w: a directory is in the way: %v", ErrInvalidKey, err)
		}
		return err
	}
	committed = true
	if d, err := root.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("sync directory: %w", err)
		}
	}
	return nil
}

// createTemp creates the directory dir and an exclusive hidden temporary file
// in it. A concurrent Delete may remove a just-created empty directory, so a
// vanished directory is re-created a few times.
func createTemp(root *os.Root, dir string) (*os.File, string, error) {
	var lastErr error
	for range 10 {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			// MkdirAll reports EEXIST when a concurrent Delete removes a
			// directory it has just found existing: nothing is in the way
			// then, so try again.
			if _, serr := root.Stat(dir); conflict(err) && errors.Is(serr, fs.ErrNotExist) {
				lastErr = err
				continue
			}
			if conflict(err) {
				return nil, "", fmt.Errorf("%w: a file is in the way: %v", ErrInvalidKey, err)
			}
			return nil, "", err
		}
		var b [8]byte
		rand.Read(b[:])
		name := path.Join(dir, tmpPrefix+hex.EncodeToString(b[:]))
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err == nil {
			return f, name, nil
		}
		lastErr = err
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	return nil, "", lastErr
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
