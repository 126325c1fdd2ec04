//go:build darwin || linux || openbsd

package blob

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// writeAt writes bufs one after the other from off, with as few system
// calls as the kernel allows: one, unless it writes short.
func writeAt(f *os.File, bufs [][]byte, off int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	left := 0
	for _, b := range bufs {
		left += len(b)
	}
	for left > 0 {
		var n int
		var werr error
		if err := rc.Write(func(fd uintptr) bool {
			n, werr = unix.Pwritev(int(fd), bufs, off)
			return true
		}); err != nil {
			return err
		}
		switch {
		case werr == unix.EINTR:
			continue
		case werr != nil:
			return werr
		case n == 0:
			return io.ErrShortWrite
		}
		off, left = off+int64(n), left-n
		bufs = advance(bufs, n)
	}
	return nil
}
