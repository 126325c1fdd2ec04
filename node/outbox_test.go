package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// sizeCheck is a submitter that refuses, as CheckTx and the mempool do, a
// batch that tx.Decode refuses (one over tx.MaxBatchSize among them).
type sizeCheck struct{ sizes []int }

func (s *sizeCheck) checkTx(raw []byte) (func(context.Context) (app.Result, error), app.Result, error) {
	s.sizes = append(s.sizes, len(raw))
	if _, _, err := tx.Decode(raw); err != nil {
		return nil, app.Result{Code: app.CodeOf(err), Log: err.Error()}, nil
	}
	return func(context.Context) (app.Result, error) { return app.Result{}, nil }, app.Result{}, nil
}

// TestOutboxAccessManyBatchSize: however many served access.many requests
// wait in the outbox, the batches it builds of them must be ones the
// ledger takes (at most tx.MaxBatchSize bytes); otherwise the requests are
// retried forever and their access events never reach the ledger.
func TestOutboxAccessManyBatchSize(t *testing.T) {
	reader, err := ident.Generate()
	if err != nil {
		t.Fatal(err)
	}
	server, err := ident.Generate()
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, tx.MaxAccessRecords)
	for i := range ids {
		ids[i] = fmt.Sprintf("r%032x", i)
	}
	for _, pending := range []int{100, 400} {
		t.Run(fmt.Sprint(pending), func(t *testing.T) {
			o, err := openOutbox(t.TempDir(), server, "test-chain", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer o.close()
			for i := range pending {
				x, err := tx.New(tx.TypeAccessMany, reader.ID(), uint64(i+1), tx.AccessMany{Records: ids, Purpose: "treatment"})
				if err != nil {
					t.Fatal(err)
				}
				if err := x.Sign("test-chain", reader.Sign); err != nil {
					t.Fatal(err)
				}
				raw, err := x.Encode()
				if err != nil {
					t.Fatal(err)
				}
				if err := o.add(raw); err != nil {
					t.Fatal(err)
				}
			}
			s := &sizeCheck{}
			sent := 0
			for range pending {
				hashes, reqs, _ := o.take(tx.MaxAccessBatch)
				if len(hashes) == 0 {
					break
				}
				if _, err := o.send(s, reqs); err != nil {
					t.Fatalf("a batch of %d access.many requests (%d bytes) is refused: %v", len(reqs), s.sizes[len(s.sizes)-1], err)
				}
				o.done(hashes, true)
				sent += len(hashes)
			}
			if sent != pending {
				t.Fatalf("%d of %d requests sent", sent, pending)
			}
		})
	}
}

// TestOutboxRefusesPastItsBacklog: while as many served reads as the
// outbox holds wait for the ledger, a new read is refused (ErrBacklog) and
// not written; once one is recorded, reads are taken again. A restart
// finds the backlog on disk and keeps refusing.
func TestOutboxRefusesPastItsBacklog(t *testing.T) {
	server, err := ident.Generate()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	o, err := openOutbox(dir, server, "test-chain", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	o.max = 3
	read := func(i int) []byte { return fmt.Appendf(nil, "signed read %d", i) }
	for i := range 3 {
		if err := o.add(read(i)); err != nil {
			t.Fatalf("read %d of 3: %v", i, err)
		}
	}
	if err := o.add(read(3)); !errors.Is(err, ErrBacklog) {
		t.Fatalf("a fourth read with 3 waiting = %v; want ErrBacklog", err)
	}
	if _, closer, err := o.db.Get([]byte(tx.Hash(read(3)))); err == nil {
		closer.Close()
		t.Fatal("the refused read was written to the outbox")
	}
	o.done([]string{tx.Hash(read(0))}, true)
	if err := o.add(read(3)); err != nil {
		t.Fatalf("a read once one was recorded: %v", err)
	}
	if err := o.close(); err != nil {
		t.Fatal(err)
	}
	if o, err = openOutbox(dir, server, "test-chain", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	defer o.close()
	o.max = 3
	if err := o.add(read(4)); !errors.Is(err, ErrBacklog) {
		t.Fatalf("after a restart with 3 waiting, a read = %v; want ErrBacklog", err)
	}
}

// TestOutboxSyncInterval: the outbox's syncs are spaced only while reads
// arrive together, more than one between two syncs.
func TestOutboxSyncInterval(t *testing.T) {
	var o outbox
	for i, tc := range []struct {
		adds uint64 // reads begun since the last sync
		want time.Duration
	}{
		{0, 0},
		{1, 0},
		{2, outboxSyncInterval},
		{40, outboxSyncInterval},
		{1, 0},
		{0, 0},
		{3, outboxSyncInterval},
	} {
		o.adds.Add(tc.adds)
		if got := o.syncInterval(); got != tc.want {
			t.Errorf("step %d: %d reads since the last sync: interval %v, want %v", i, tc.adds, got, tc.want)
		}
	}
}
