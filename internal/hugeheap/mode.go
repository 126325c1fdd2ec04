package hugeheap

import (
	"bytes"
	"fmt"
)

// parseMode reads the kernel's transparent huge page setting, such as
// "always [madvise] never": the bracketed word is the mode.
func parseMode(b []byte) (string, error) {
	for _, f := range bytes.Fields(b) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return string(f[1 : len(f)-1]), nil
		}
	}
	return "", fmt.Errorf("transparent huge page mode %q: no [mode] in it", bytes.TrimSpace(b))
}
