package blob

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// crashWriterEnv names the store directory a re-executed test binary
// writes to, in TestKilledWriterLosesNothingAcknowledged.
const crashWriterEnv = "MEDCHAIN_BLOB_CRASH_WRITER"

// TestCrashWriter is the writer TestKilledWriterLosesNothingAcknowledged
// runs in a process of its own: it stores batches of blobs from several
// goroutines and prints each name once PutMany has returned. Run alone, it
// does nothing.
func TestCrashWriter(t *testing.T) {
	dir := os.Getenv(crashWriterEnv)
	if dir == "" {
		t.Skip("the writer of TestKilledWriterLosesNothingAcknowledged")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan string, 1024)
	for w := range 4 {
		go func() {
			for i := 0; ; i++ {
				var batch [][]byte
				for k := range 16 {
					batch = append(batch, fmt.Appendf(nil, "%d %d writer %d batch %d blob %d %s", os.Getpid(), time.Now().UnixNano(), w, i, k, strings.Repeat("x", 1000*k)))
				}
				names, err := s.PutMany(batch)
				if err != nil {
					panic(err)
				}
				for _, n := range names {
					out <- n
				}
			}
		}()
	}
	for n := range out {
		fmt.Println("stored", n)
	}
}

// TestKilledWriterLosesNothingAcknowledged: a process storing blobs is
// killed (SIGKILL) at a random moment, three times over the same store;
// after each, every blob it had acknowledged reads back, and every blob
// the store walks reads back unchanged (a crash leaves bytes no entry
// names, never an entry naming wrong bytes).
func TestKilledWriterLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a writer process three times")
	}
	dir := t.TempDir()
	var acked []string
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashWriter$", "-test.v")
		cmd.Env = append(os.Environ(), crashWriterEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(stdout)
		deadline := time.Now().Add(time.Duration(200+100*round) * time.Millisecond)
		got := 0
		for lines.Scan() {
			if name, ok := strings.CutPrefix(lines.Text(), "stored "); ok {
				acked = append(acked, name)
				got++
			}
			if got > 0 && time.Now().After(deadline) {
				break
			}
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if got == 0 {
			t.Fatalf("round %d: the writer acknowledged nothing", round)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("round %d: reopen after the kill: %v", round, err)
		}
		for _, n := range acked {
			if _, err := s.Get(n); err != nil {
				t.Fatalf("round %d: acknowledged blob lost: %v", round, err)
			}
		}
		walkedNames := 0
		if err := s.Walk(func(n string) error {
			walkedNames++
			_, err := s.Get(n)
			return err
		}); err != nil {
			t.Fatalf("round %d: a walked blob does not read back: %v", round, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("round %d: %d blobs acknowledged in all, %d in the store", round, len(acked), walkedNames)
	}
}
