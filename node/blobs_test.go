package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

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
	batch := mustBatch(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.StoreBlobs(ctx, batch); !errors.Is(err, context.Canceled) {
		t.Fatalf("StoreBlobs with every turn taken: %v; want context.Canceled", err)
	}
	if store.Has(blob.Hash(b)) {
		t.Fatal("blob stored without a turn")
	}
	<-r.writers
	if n, err := r.StoreBlobs(context.Background(), batch); err != nil || n != 1 {
		t.Fatalf("StoreBlobs with a free turn: %d copies, %v", n, err)
	}
	if !store.Has(blob.Hash(b)) {
		t.Fatal("blob not stored with a free turn")
	}
	if len(r.writers) != cap(r.writers)-1 {
		t.Fatalf("%d turns taken after the write; want %d (the write gave its turn back)", len(r.writers), cap(r.writers)-1)
	}
}

// TestStoreBlobsWaitsForEveryPeerItCan: once f+1 nodes hold the blobs the
// write could be acknowledged, but it waits (up to its grace) for the
// other peers too, so that the transaction gossiped next finds its blobs
// on every validator; a peer that fails is not counted, and one slower
// than the grace is left to finish in the background.
func TestStoreBlobsWaitsForEveryPeerItCan(t *testing.T) {
	ok := func(delay time.Duration) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			_, _ = io.Copy(io.Discard, r.Body)
		}
	}
	fail := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusInternalServerError) })
	for _, tc := range []struct {
		name   string
		peers  []http.Handler
		grace  time.Duration
		copies int
	}{
		{"all answer, the last well after f+1", []http.Handler{ok(0), ok(50 * time.Millisecond), ok(200 * time.Millisecond)}, time.Minute, 4},
		{"one fails", []http.Handler{ok(0), fail, ok(100 * time.Millisecond)}, time.Minute, 3},
		{"one slower than the grace", []http.Handler{ok(0), ok(2 * time.Second), ok(0)}, 100 * time.Millisecond, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, err := blob.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			var peers []apiPeer
			for i, h := range tc.peers {
				srv := httptest.NewServer(h)
				defer srv.Close()
				peers = append(peers, apiPeer{ID: fmt.Sprintf("peer%d", i), URL: srv.URL})
			}
			r := newReplicator(store, "test-chain", &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}, peers, 4, slog.New(slog.NewTextHandler(io.Discard, nil)))
			r.grace = tc.grace
			n, err := r.StoreBlobs(context.Background(), mustBatch(t, []byte("a blob every validator should hold")))
			if err != nil || n != tc.copies {
				t.Fatalf("StoreBlobs = %d copies, %v; want %d", n, err, tc.copies)
			}
		})
	}
}

func mustBatch(t *testing.T, blobs ...[]byte) *blob.Batch {
	t.Helper()
	b, err := blob.NewBatch(blobs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPeerKnown: a peer's header is checked, all but its body signature,
// before the body is read: from a configured peer and fresh it passes;
// from another node, stale, or with a key that is not its ID's, it fails.
func TestPeerKnown(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	peerKey := &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}
	stranger := newReplicator(nil, "test-chain", &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}, nil, 1, quiet)
	peer := newReplicator(nil, "test-chain", peerKey, nil, 1, quiet)
	r := newReplicator(nil, "test-chain", &p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}, []apiPeer{{ID: string(peerKey.ID()), URL: "http://127.0.0.1:1"}}, 4, quiet)
	req := func(from *replicator) *http.Request {
		t.Helper()
		q, err := from.request(context.Background(), http.MethodPost, apiPeer{URL: "http://127.0.0.1:1"}, "/v1/blobs", []byte("body"))
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	if err := r.PeerKnown(req(peer)); err != nil {
		t.Fatalf("PeerKnown of a configured peer's request: %v", err)
	}
	if err := r.PeerRequest(req(peer), []byte("body")); err != nil {
		t.Fatalf("PeerRequest of a configured peer's request: %v", err)
	}
	if err := r.PeerKnown(req(stranger)); err == nil {
		t.Error("PeerKnown passed a request from a node that is not a peer")
	}
	stale := req(peer)
	parts := strings.Split(stale.Header.Get(peerHeader), ":")
	parts[1] = strconv.FormatInt(time.Now().Add(-time.Hour).UnixNano(), 10)
	stale.Header.Set(peerHeader, strings.Join(parts, ":"))
	if err := r.PeerKnown(stale); err == nil {
		t.Error("PeerKnown passed a request an hour old")
	}
	forged := req(stranger)
	parts = strings.Split(forged.Header.Get(peerHeader), ":")
	parts[0] = string(peerKey.ID()) // the peer's ID with the stranger's key
	forged.Header.Set(peerHeader, strings.Join(parts, ":"))
	if err := r.PeerKnown(forged); err == nil {
		t.Error("PeerKnown passed a peer's ID with another node's key")
	}
}
