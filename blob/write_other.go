//go:build !(darwin || linux || openbsd)

package blob

import "os"

// writeAt writes bufs one after the other from off.
func writeAt(f *os.File, bufs [][]byte, off int64) error {
	for _, b := range bufs {
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
		off += int64(len(b))
	}
	return nil
}
