//go:build unix

package fonts

import (
	"os"
	"syscall"
)

// mapFile maps a font file read-only into memory. Fonts stay loaded for
// the life of the process, so the mapping is never removed; only the pages
// a render touches (cmap, the used glyphs) become resident, and they are
// file-backed, so the kernel can drop them under pressure.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if size == 0 {
		return nil, nil
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}
