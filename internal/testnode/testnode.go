// Package testnode builds the medchain binary and runs it as child processes for end-to-end tests.
package testnode

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ModuleRoot finds the directory of go.mod, via `go env GOMOD` or "..".
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull {
			return filepath.Dir(p), nil
		}
	}
	if _, err := os.Stat(filepath.Join("..", "go.mod")); err == nil {
		return filepath.Abs("..")
	}
	return "", errors.New("cannot find the module root (no go.mod)")
}

// Build builds ./cmd/medchain (bounded at 5 minutes) into a new temporary
// directory named after prefix. It returns the binary's path and the
// directory, which the caller removes when done.
func Build(prefix string) (bin, dir string, err error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, "medchain")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/medchain")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := build.CombinedOutput(); err != nil {
		return "", dir, fmt.Errorf("build medchain: %v\n%s", err, out)
	}
	return bin, dir, nil
}

// Environ is this process's environment without any MEDCHAIN_* variable
// or $HOME, followed by extra ("K=V" each): a test passes its own
// MEDCHAIN_* and a private HOME so that no default path touches the real
// ~/.medchain.
func Environ(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MEDCHAIN_") || strings.HasPrefix(kv, "HOME=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, extra...)
}
