package app

import (
	"crypto/sha256"
	"slices"
	"strings"
	"sync"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// cache keeps decoded ledger entries that every transaction and read would
// otherwise decode again. It holds only committed state: actors and records,
// which never change once committed, and each patient's consents and key
// epoch numbers, dropped at every commit that touches the patient. A block
// in progress reads around it for the patients it changes. The cache
// changes speed, never a decision.
//
// A reader takes the generation before it reads committed state and offers
// what it read with it: a commit that forgot the patient in between bumped
// the generation, and the possibly stale value is not kept.
type cache struct {
	mu       sync.RWMutex
	gen      uint64
	actors   map[string]*Actor
	consents map[string]*consent.Set
	epochs   map[string]epochNums // patient -> current epoch numbers
	records  map[string]Record    // never change once committed
}

func (c *cache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

const (
	maxCached        = 1 << 18
	maxCachedRecords = 1 << 16 // a record is ~0.5 KiB decoded
)

func (c *cache) record(id string) (Record, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	r, ok := c.records[id]
	return r, ok
}

func (c *cache) putRecord(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.records == nil || len(c.records) >= maxCachedRecords {
		c.records = map[string]Record{}
	}
	c.records[r.ID] = r
}

func (c *cache) actor(id string) (*Actor, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	a, ok := c.actors[id]
	return a, ok
}

func (c *cache) putActor(a *Actor) {
	// Members are who ask under consents (requesterOf); any other actor
	// that does is interned as it asks. Interning every patient too left a
	// few objects each in the interning map for the garbage collector to
	// mark on every cycle, and made no decision faster.
	if a.Kind == KindMember {
		a.requester = consent.Requester{ID: a.ID, Role: a.Role, Org: a.Org}.Intern()
		a.ID, a.Org = a.requester.ID, a.requester.Org // the same strings, so requesterOf compares pointers
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.actors == nil || len(c.actors) >= maxCached {
		c.actors = map[string]*Actor{}
	}
	c.actors[a.ID] = a
}

func (c *cache) patientConsents(p string) (*consent.Set, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	cs, ok := c.consents[p]
	return cs, ok
}

func (c *cache) putConsents(gen uint64, p string, cs *consent.Set) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.consents == nil || len(c.consents) >= maxCached {
		c.consents = map[string]*consent.Set{}
	}
	// A copy of the key: p may be a window on a transaction's or a
	// record's bytes, which the map would keep alive (storing a key, even
	// over an equal one, keeps the new string).
	c.consents[strings.Clone(p)] = cs
}

// epochNums are one patient's current epoch numbers: n[i] is
// consent.Categories[i]'s when bit i of have is set. One entry a patient,
// in the map's own memory, keyed by one string: keyed by patient and
// category, 100,000 patients' epochs were up to 262,144 strings for the
// garbage collector to mark on every cycle.
type epochNums struct {
	have uint16
	n    [14]uint64
}

func (c *cache) epoch(patient, category string) (uint64, bool) {
	i := slices.Index(consent.Categories, category)
	if i < 0 {
		return 0, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.epochs[patient]
	return e.n[i], e.have&(1<<i) != 0
}

func (c *cache) putEpoch(gen uint64, patient, category string, n uint64) {
	i := slices.Index(consent.Categories, category)
	if i < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	e, ok := c.epochs[patient]
	if !ok && (c.epochs == nil || len(c.epochs) >= maxCached) {
		c.epochs = map[string]epochNums{}
	}
	e.n[i], e.have = n, e.have|1<<i
	c.epochs[strings.Clone(patient)] = e // see putConsents
}

// forget drops the patients whose consents or key epochs a committed block
// changed.
func (c *cache) forget(patients map[string]bool) {
	if len(patients) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for p := range patients {
		delete(c.consents, p)
		delete(c.epochs, p)
	}
}

// keyCache remembers, by SHA-256, the epoch public keys that parse: a
// patient.add carries one for each of 14 categories, checked in CheckTx and
// again in FinalizeBlock, and parsing one (ML-KEM-768+X25519) costs ~50 µs.
// Whether bytes parse never changes, so a remembered answer changes no
// decision. Only keys that parse are remembered; the set is bounded.
type keyCache struct {
	mu sync.Mutex
	ok map[[32]byte]struct{}
}

const maxKeys = 1 << 14

// valid reports whether key is an ML-KEM-768+X25519 public key.
func (c *keyCache) valid(key []byte) bool {
	h := sha256.Sum256(key)
	c.mu.Lock()
	_, ok := c.ok[h]
	c.mu.Unlock()
	if ok {
		return true
	}
	if _, err := ident.KEM().NewPublicKey(key); err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ok == nil || len(c.ok) >= maxKeys {
		c.ok = map[[32]byte]struct{}{}
	}
	c.ok[h] = struct{}{}
	return true
}

// verifiedTx is a transaction whose bytes decoded and whose signature held.
type verifiedTx struct {
	t    *tx.Tx
	body any
	size int // encoded bytes
}

// verifiedCache remembers verified transactions by hash, bounded by count
// and by their encoded bytes: a transaction is cached once its signature
// checks out, whatever the ledger then says of it, and a patient.add is
// signed by the key it carries, so anyone can fill the cache.
type verifiedCache struct {
	mu    sync.Mutex
	m     map[string]verifiedTx
	bytes int // encoded size of what m holds
}

const (
	maxVerified      = 1 << 16
	maxVerifiedBytes = 64 << 20 // encoded; held decoded, a few times that
)

func (c *verifiedCache) get(hash string, take bool) (verifiedTx, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[hash]
	if ok && take {
		delete(c.m, hash)
		c.bytes -= v.size
	}
	return v, ok
}

func (c *verifiedCache) put(hash string, v verifiedTx) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[hash]; ok {
		c.bytes -= old.size
	}
	if c.m == nil || len(c.m) >= maxVerified || c.bytes+v.size > maxVerifiedBytes {
		c.m, c.bytes = map[string]verifiedTx{}, 0
	}
	c.m[hash] = v
	c.bytes += v.size
}
