package app

import (
	"sync"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/tx"
)

// cache keeps decoded ledger entries that every transaction and read would
// otherwise decode again. It holds only committed state: actors, which never
// change once registered, and each patient's consents, dropped at every
// commit that touches them. A block in progress reads around it for the
// patients it changes. The cache changes speed, never a decision.
type cache struct {
	mu       sync.RWMutex
	actors   map[string]*Actor
	consents map[string][]consent.Consent
}

const maxCached = 1 << 18

func (c *cache) actor(id string) (*Actor, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.actors[id]
	return a, ok
}

func (c *cache) putActor(a *Actor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.actors == nil || len(c.actors) >= maxCached {
		c.actors = map[string]*Actor{}
	}
	c.actors[a.ID] = a
}

func (c *cache) patientConsents(p string) ([]consent.Consent, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cs, ok := c.consents[p]
	return cs, ok
}

func (c *cache) putConsents(p string, cs []consent.Consent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.consents == nil || len(c.consents) >= maxCached {
		c.consents = map[string][]consent.Consent{}
	}
	c.consents[p] = cs
}

// forget drops the patients whose consents a committed block changed.
func (c *cache) forget(patients map[string]bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range patients {
		delete(c.consents, p)
	}
}

// verifiedTx is a transaction whose bytes decoded and whose signature held.
type verifiedTx struct {
	t    *tx.Tx
	body any
}

// verifiedCache remembers verified transactions by hash, bounded.
type verifiedCache struct {
	mu sync.Mutex
	m  map[string]verifiedTx
}

const maxVerified = 1 << 16

func (c *verifiedCache) get(hash string, take bool) (verifiedTx, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[hash]
	if ok && take {
		delete(c.m, hash)
	}
	return v, ok
}

func (c *verifiedCache) put(hash string, v verifiedTx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxVerified {
		c.m = map[string]verifiedTx{}
	}
	c.m[hash] = v
}
