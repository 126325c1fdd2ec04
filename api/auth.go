package api

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// MaxSkew is how far a signed request's time may be from the node's clock.
// The clock here only guards freshness at the edge; it never reaches the
// ledger.
const MaxSkew = 2 * time.Minute

// PeerHeader carries a peer node's signature on a blob request:
// "<node ID>:<unix ns>:<base64url public key>:<base64url signature>".
const PeerHeader = "X-Medchain-Peer"

// ErrAuth reports a request whose signature is missing, wrong, stale or
// replayed.
var ErrAuth = errors.New("request not authenticated")

// replayCache remembers the signatures it has seen for as long as their
// requests' times could still pass: in two generations, each begun 2 ×
// MaxSkew after the one before, so a signature is remembered at least that
// long, and a lookup costs the same however many it holds.
type replayCache struct {
	mu       sync.Mutex
	cur, old map[[32]byte]struct{}
	since    time.Time // when cur began
}

// fresh records sig and reports whether it was not seen before.
func (c *replayCache) fresh(sig []byte, now time.Time) bool {
	k := sha256.Sum256(sig)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || now.Sub(c.since) > 2*MaxSkew {
		c.old, c.cur, c.since = c.cur, map[[32]byte]struct{}{}, now
	}
	if _, dup := c.cur[k]; dup {
		return false
	}
	if _, dup := c.old[k]; dup {
		return false
	}
	c.cur[k] = struct{}{}
	return true
}

// preauth checks what can be checked of a signed request before its body
// is read: the header's shape, its time and that the actor exists. It
// keeps unauthenticated uploads from costing the node their size.
func (h *handler) preauth(r *http.Request) (*app.Actor, int64, []byte, error) {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return nil, 0, nil, fmt.Errorf("%w: sign the request (Authorization: %s actor:time:signature)", ErrAuth, tx.RequestScheme)
	}
	actor, ts, sig, err := tx.ParseRequestAuth(hdr)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	if d := time.Since(time.Unix(0, ts)); d > MaxSkew || d < -MaxSkew {
		return nil, 0, nil, fmt.Errorf("%w: request time is %s away from the node's clock; check the clock and sign again", ErrAuth, d.Round(time.Second))
	}
	if !ident.ValidID(actor) {
		return nil, 0, nil, fmt.Errorf("%w: malformed actor ID", ErrAuth)
	}
	a, err := h.b.App().GetActor(actor)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("%w: %s is not registered", ErrAuth, actor)
	}
	return a, ts, sig, nil
}

// authenticate checks a signed request and returns the actor it acts for.
func (h *handler) authenticate(r *http.Request, body []byte) (*app.Actor, error) {
	a, ts, sig, err := h.preauth(r)
	if err != nil {
		return nil, err
	}
	actor, now := a.ID, time.Now()
	pub, err := a.SigningKey()
	if err != nil {
		return nil, err
	}
	msg := tx.RequestSignBytes(h.b.App().ChainID(), r.Method, r.URL.RequestURI(), ts, body)
	if !ed25519.Verify(pub, msg, sig) {
		return nil, fmt.Errorf("%w: signature does not verify for %s", ErrAuth, actor)
	}
	if !h.replays.fresh(sig, now) {
		return nil, fmt.Errorf("%w: this signed request was already used; sign a new one", ErrAuth)
	}
	return a, nil
}
