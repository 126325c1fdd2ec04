//go:build !(linux || darwin || dragonfly || freebsd || netbsd || openbsd)

package keyring

import (
	"errors"
	"os"
)

// isTerminal guesses from the file mode: a character device is taken to be
// a terminal. Reading a passphrase then fails cleanly on EOF if it is not.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// echoOff cannot turn echo off here without golang.org/x/term; the
// passphrase is read with echo as the terminal has it. Prefer
// MEDCHAIN_PASSPHRASE on these systems.
func echoOff(*os.File) (func(), error) {
	return nil, errors.New("echo control not supported on this system")
}
