package keyring

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
)

// PassphraseEnv is the environment variable [Passphrase] reads first.
const PassphraseEnv = "MEDCHAIN_PASSPHRASE"

// Passphrase returns the passphrase to use: $MEDCHAIN_PASSPHRASE if it is set
// and not empty; otherwise, if standard input is a terminal, one read from it
// after writing prompt to standard error, with echo turned off (and, if
// confirm is set, read a second time and compared); otherwise an error asking
// for MEDCHAIN_PASSPHRASE to be set. An empty passphrase is an error.
//
// The passphrase is never echoed, printed or put into an error.
//
// golang.org/x/term is not in this module's go.mod (only in its graph, via
// x/crypto) and is not in the module cache, so echo is turned off directly
// with termios ioctls from golang.org/x/sys/unix, which go.mod already
// requires, on Linux and the BSDs (including macOS). On other systems the
// line is read with echo left as it is; set MEDCHAIN_PASSPHRASE there.
func Passphrase(prompt string, confirm bool) (string, error) {
	return passphrase(prompt, confirm, os.Getenv(PassphraseEnv), os.Stdin, os.Stderr)
}

func passphrase(prompt string, confirm bool, env string, in *os.File, out io.Writer) (string, error) {
	if env != "" {
		return env, nil
	}
	if !isTerminal(in) {
		return "", fmt.Errorf("read passphrase: standard input is not a terminal; set %s", PassphraseEnv)
	}
	p, err := promptOnce(prompt, in, out)
	if err != nil {
		return "", err
	}
	if p == "" {
		return "", errors.New("read passphrase: empty passphrase")
	}
	if confirm {
		q, err := promptOnce("Repeat passphrase: ", in, out)
		if err != nil {
			return "", err
		}
		if subtle.ConstantTimeCompare([]byte(p), []byte(q)) != 1 {
			return "", errors.New("read passphrase: passphrases do not match")
		}
	}
	return p, nil
}

func promptOnce(prompt string, in *os.File, out io.Writer) (string, error) {
	fmt.Fprint(out, prompt)
	restore, echoErr := echoOff(in)
	line, err := readLine(in)
	if echoErr == nil {
		restore()
	}
	fmt.Fprintln(out) // the user's newline was not echoed
	if err != nil {
		return "", fmt.Errorf("read passphrase: %w", err)
	}
	return line, nil
}

// readLine reads up to '\n' one byte at a time, so that nothing after the
// line is consumed from in. The trailing "\r\n" or "\n" is dropped.
func readLine(in io.Reader) (string, error) {
	var buf []byte
	defer clear(buf[:cap(buf)])
	var b [1]byte
	for {
		n, err := in.Read(b[:])
		if n == 1 {
			if b[0] == '\n' {
				break
			}
			if len(buf) >= maxPassLen {
				return "", fmt.Errorf("passphrase longer than %d bytes", maxPassLen)
			}
			buf = append(buf, b[0])
			continue
		}
		if err == io.EOF {
			if len(buf) == 0 {
				return "", fmt.Errorf("end of input; set %s to pass a passphrase non-interactively", PassphraseEnv)
			}
			break
		}
		if err != nil {
			return "", err
		}
	}
	if len(buf) > 0 && buf[len(buf)-1] == '\r' {
		buf = buf[:len(buf)-1]
	}
	return string(buf), nil
}
