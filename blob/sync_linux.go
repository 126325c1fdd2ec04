package blob

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable, and its size, without its other
// metadata.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for serr = syscall.Fdatasync(int(fd)); serr == syscall.EINTR; {
			serr = syscall.Fdatasync(int(fd))
		}
	}); err != nil {
		return err
	}
	return serr
}
