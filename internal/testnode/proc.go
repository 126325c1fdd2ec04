package testnode

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Proc is one run of `medchain node`, in its own process group.
type Proc struct {
	Name string
	Log  string // the file its stdout and stderr go to
	Cmd  *exec.Cmd
	done chan struct{}
	err  error // set when done closes
}

// Start starts `bin node --home home` with the environment env, appending
// a start line and then its output to logPath.
func Start(bin, name, home, logPath string, env []string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "=== start %s at %s\n", name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, "node", "--home", home)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Log: logPath, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error; it is set once Done is closed.
func (p *Proc) Err() error { return p.err }

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Wait waits up to d for the process to exit and reports whether it did.
func (p *Proc) Wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) error {
	if !p.Running() {
		return fmt.Errorf("%s is not running (%v)", p.Name, p.err)
	}
	return syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Kill SIGKILLs the process group and waits for it (10s at most).
func (p *Proc) Kill() error {
	if p.Running() {
		_ = syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	}
	if !p.Wait(10 * time.Second) {
		return fmt.Errorf("%s: still running 10s after SIGKILL", p.Name)
	}
	return nil
}
