package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"

	"github.com/medchain/medchain/api"
	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/tx"
)

const peerHeader = api.PeerHeader

// apiPeer is another node's API, named by its CometBFT node ID.
type apiPeer struct {
	ID  string
	URL string
}

func parseAPIPeers(list []string) ([]apiPeer, error) {
	var out []apiPeer
	for _, s := range list {
		id, url, ok := strings.Cut(s, "@")
		if !ok || id == "" || !strings.HasPrefix(url, "http") {
			return nil, fmt.Errorf("api peer %q: want NODEID@http://HOST:PORT", s)
		}
		out = append(out, apiPeer{ID: id, URL: strings.TrimRight(url, "/")})
	}
	return out, nil
}

// replicator keeps blobs: locally, on enough peers at write time, and by
// fetching what a committed record names but this node lacks.
type replicator struct {
	store   *blob.Store
	chainID string
	key     ed25519.PrivKey
	self    string
	peers   []apiPeer
	copies  int           // nodes that must hold a blob before a write is acknowledged
	grace   time.Duration // how much longer the other peers are waited for (see StoreBlobs)
	hc      *http.Client
	log     *slog.Logger

	queue   chan string
	writers chan struct{} // turns for local blob writes (storeLocal)
	mu      sync.Mutex
	retry   map[string]bool
}

func newReplicator(store *blob.Store, chainID string, key *p2p.NodeKey, peers []apiPeer, validators int, log *slog.Logger) *replicator {
	f := (validators - 1) / 3
	return &replicator{
		store: store, chainID: chainID, key: key.PrivKey.(ed25519.PrivKey), self: string(key.ID()),
		peers: peers, copies: min(f+1, 1+len(peers)), grace: peerGrace,
		writers: make(chan struct{}, max(1, runtime.NumCPU()-1)),
		hc:      &http.Client{Timeout: 15 * time.Second},
		log:     log, queue: make(chan string, 1<<16), retry: map[string]bool{},
	}
}

// peerGrace is how long StoreBlobs waits, once enough nodes hold a batch of
// blobs, for the other peers to hold it too.
const peerGrace = time.Second

// StoreBlobs implements api.BlobBackend: one synced local write, then one
// request per peer, acknowledged once enough nodes hold every blob.
//
// Enough is f+1 nodes, but StoreBlobs then waits up to r.grace more for
// the other peers: the transaction naming the blobs is gossiped to every
// validator next, and one that does not hold them yet refuses it in
// CheckTx. If that validator proposes, the signer's next transaction,
// whose blobs did arrive, can commit first and leave this one's nonce
// stale (seen in 4-validator bench runs under the race detector). A peer
// that is down answers at once and is not waited for.
func (r *replicator) StoreBlobs(ctx context.Context, blobs *blob.Batch) (int, error) {
	if err := r.storeLocal(ctx, blobs); err != nil {
		return 0, err
	}
	if len(r.peers) == 0 {
		return 1, nil
	}
	body := blobs.Encode()
	acks := make(chan bool, len(r.peers))
	for _, p := range r.peers {
		go func() {
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			acks <- r.push(pctx, p, body) == nil
		}()
	}
	copies, heard := 1, 0
	for ; copies < r.copies && heard < len(r.peers); heard++ {
		select {
		case ok := <-acks:
			if ok {
				copies++
			}
		case <-ctx.Done():
			return copies, ctx.Err()
		}
	}
	if copies < r.copies {
		return copies, fmt.Errorf("blobs reached %d node(s), %d needed to survive a failure; retry when more nodes are up", copies, r.copies)
	}
	grace := time.NewTimer(r.grace)
	defer grace.Stop()
	for ; heard < len(r.peers); heard++ {
		select {
		case ok := <-acks:
			if ok {
				copies++
			}
		case <-grace.C:
			return copies, nil // the rest finish in the background
		case <-ctx.Done():
			return copies, nil // enough copies already
		}
	}
	return copies, nil
}

// storeLocal writes blobs here. Writes take turns on all cores but one
// (cores, not the scheduler's Ps, of which UseSpareProcs gives more): a
// burst of uploads would otherwise keep consensus, which runs on one
// goroutine, waiting for a core while its block is due, and every writer
// would wait longer for it. A turn covers the CPU's part, copying the
// bytes into the page cache: a writer gives it up when it starts waiting
// for the disk, so the next one copies meanwhile, and the writers waiting
// for the disk share their syncs. The blobs were hashed before, outside
// the turn (blob.NewBatch).
func (r *replicator) storeLocal(ctx context.Context, blobs *blob.Batch) error {
	select {
	case r.writers <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for a turn to store blobs: %w", ctx.Err())
	}
	return r.store.WriteReleasing(blobs, func() { <-r.writers })
}

func (r *replicator) push(ctx context.Context, p apiPeer, batch []byte) error {
	req, err := r.request(ctx, http.MethodPost, p, "/v1/blobs", batch)
	if err != nil {
		return err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("peer %s answered %d", p.ID, resp.StatusCode)
	}
	return nil
}

func (r *replicator) request(ctx context.Context, method string, p apiPeer, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	ts := time.Now().UnixNano()
	sig, err := r.key.Sign(tx.RequestSignBytes(r.chainID, method, path, ts, body))
	if err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding
	req.Header.Set(peerHeader, fmt.Sprintf("%s:%d:%s:%s", r.self, ts, enc.EncodeToString(r.key.PubKey().Bytes()), enc.EncodeToString(sig)))
	return req, nil
}

// PeerRequest implements api.BlobBackend.
func (r *replicator) PeerRequest(req *http.Request, body []byte) error {
	ts, pk, sig, err := r.peerHeader(req)
	if err != nil {
		return err
	}
	if !pk.VerifySignature(tx.RequestSignBytes(r.chainID, req.Method, req.URL.RequestURI(), ts, body), sig) {
		return errors.New("peer signature does not verify")
	}
	return nil
}

// PeerKnown implements api.BlobBackend.
func (r *replicator) PeerKnown(req *http.Request) error {
	_, _, _, err := r.peerHeader(req)
	return err
}

// peerHeader parses a peer request's header, NODEID:TIME:PUBKEY:SIG, and
// checks all of it but the signature: the time, the key's match with the
// ID, and the ID's place among this node's peers.
func (r *replicator) peerHeader(req *http.Request) (ts int64, pk ed25519.PubKey, sig []byte, err error) {
	parts := strings.Split(req.Header.Get(peerHeader), ":")
	if len(parts) != 4 {
		return 0, nil, nil, errors.New("not a peer request")
	}
	ts, err = strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return 0, nil, nil, errors.New("peer request time")
	}
	if d := time.Since(time.Unix(0, ts)); d > api.MaxSkew || d < -api.MaxSkew {
		return 0, nil, nil, errors.New("stale peer request")
	}
	pub, err1 := base64.RawURLEncoding.DecodeString(parts[2])
	sig, err2 := base64.RawURLEncoding.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(pub) != ed25519.PubKeySize {
		return 0, nil, nil, errors.New("malformed peer request")
	}
	pk = ed25519.PubKey(pub)
	if string(p2p.PubKeyToID(pk)) != parts[0] || !r.isPeer(parts[0]) {
		return 0, nil, nil, errors.New("not one of this node's peers")
	}
	return ts, pk, sig, nil
}

func (r *replicator) isPeer(id string) bool {
	for _, p := range r.peers {
		if p.ID == id {
			return true
		}
	}
	return false
}

// KeepBlobs implements api.BlobBackend.
func (r *replicator) KeepBlobs(blobs *blob.Batch) error { return r.store.Write(blobs) }

// HasBlob implements api.BlobBackend.
func (r *replicator) HasBlob(name string) bool { return r.store.Has(name) }

// Blob implements api.BlobBackend.
func (r *replicator) Blob(ctx context.Context, name string) ([]byte, error) {
	b, err := r.store.Get(name)
	if err == nil || !errors.Is(err, blob.ErrNotFound) && !errors.Is(err, blob.ErrCorrupt) {
		return b, err
	}
	return r.fetch(ctx, name)
}

// fetch gets name from the first peer that has it, checks it and keeps it.
func (r *replicator) fetch(ctx context.Context, name string) ([]byte, error) {
	for _, p := range r.peers {
		req, err := r.request(ctx, http.MethodGet, p, "/v1/blobs/"+name, nil)
		if err != nil {
			return nil, err
		}
		resp, err := r.hc.Do(req)
		if err != nil {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, blob.MaxSize+1))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || blob.Hash(b) != name {
			continue
		}
		if err := r.store.PutNamed(name, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return nil, fmt.Errorf("%w: %s is on no reachable node", blob.ErrNotFound, name)
}

// want queues blobs that committed records name, to fetch if missing.
func (r *replicator) want(names []string) {
	for _, n := range names {
		select {
		case r.queue <- n:
		default:
			r.mu.Lock()
			r.retry[n] = true
			r.mu.Unlock()
		}
	}
}

// run fetches queued blobs until ctx ends, retrying failures every few
// seconds, so a node that was down catches up on blobs as on blocks.
func (r *replicator) run(ctx context.Context) {
	tick := time.NewTicker(3 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-r.queue:
			r.ensure(ctx, n)
		case <-tick.C:
			r.mu.Lock()
			names := make([]string, 0, len(r.retry))
			for n := range r.retry {
				names = append(names, n)
			}
			clear(r.retry)
			r.mu.Unlock()
			for _, n := range names {
				r.ensure(ctx, n)
			}
		}
	}
}

func (r *replicator) ensure(ctx context.Context, name string) {
	if len(r.peers) == 0 || r.store.Has(name) {
		return
	}
	if _, err := r.fetch(ctx, name); err != nil {
		r.mu.Lock()
		r.retry[name] = true
		r.mu.Unlock()
	}
}
