//go:build !unix

package fonts

import (
	"io"
	"os"
)

func mapFile(f *os.File, size int64) ([]byte, error) { return io.ReadAll(f) }
