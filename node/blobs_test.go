package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"

	"github.com/medchain/medchain/blob"
)

// TestStoreBlobsTakesTurns checks that local blob writes wait for a turn:
// while every turn is taken a write does not happen, and gives up with its
// context; once a turn is free it goes through.
func TestStoreBlobsTakesTurns(t *testing.T) {
	store, err := blob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	r := newReplicator(store, "test-chain", &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}, nil, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if cap(r.writers) < 1 {
		t.Fatalf("%d turns for blob writes; want at least 1", cap(r.writers))
	}
	for range cap(r.writers) {
		r.writers <- struct{}{}
	}
	b := []byte("a blob written while every turn is taken")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.StoreBlobs(ctx, [][]byte{b}); !errors.Is(err, context.Canceled) {
		t.Fatalf("StoreBlobs with every turn taken: %v; want context.Canceled", err)
	}
	if store.Has(blob.Hash(b)) {
		t.Fatal("blob stored without a turn")
	}
	<-r.writers
	if n, err := r.StoreBlobs(context.Background(), [][]byte{b}); err != nil || n != 1 {
		t.Fatalf("StoreBlobs with a free turn: %d copies, %v", n, err)
	}
	if !store.Has(blob.Hash(b)) {
		t.Fatal("blob not stored with a free turn")
	}
	if len(r.writers) != cap(r.writers)-1 {
		t.Fatalf("%d turns taken after the write; want %d (the write gave its turn back)", len(r.writers), cap(r.writers)-1)
	}
}
