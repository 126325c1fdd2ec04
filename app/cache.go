package app

import (
	"crypto/sha256"
	"slices"
	"sync"
	"unsafe"

	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/internal/flatmap"
	"github.com/medchain/medchain/internal/slab"
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
//
// What the cache keeps lies in a few large blocks (package slab), each map
// beside the blocks its entries are in: at 100,000 patients, a few objects
// per patient at random addresses were most of the garbage collector's
// work on every cycle (BenchmarkCacheMarking). A map and its blocks are
// dropped together, when the map is full or, for the patients, when the
// blocks hold more forgotten entries than live ones.
type cache struct {
	mu  sync.RWMutex
	gen uint64

	actors    *flatmap.Map[Actor]
	actorMem  slab.Of[Actor]
	actorText slab.Text

	patients   *flatmap.Map[patient]
	patientMem slab.Of[patient]
	setMem     *consent.Memory
	longIDs    slab.Text // the keys of patients whose IDs are too long for an entry's own

	records    map[string]*Record // never change once committed
	recordMem  slab.Of[Record]
	recordText slab.Text
}

// patient is what the cache keeps of one patient: its consents and its
// key epoch numbers, in one entry that also holds the patient's ID, the
// index's key. At 100,000 patients few entries are in the CPU's caches,
// and a lookup costs a memory stall for each place it reads, one after
// another: the index's slot (package flatmap), then the entry, whose
// first cache lines hold both the key's bytes to compare and the
// consents' rules.
type patient struct {
	id     [inlineID]byte // the key's bytes, when the ID fits
	idLen  uint8          // the key's length in id; 0: the key is long
	hasSet bool
	// set never changes once hasSet: readers use it after they unlock.
	set    consent.Set
	epochs epochNums
	long   string // the key, when it is empty or does not fit in id
}

// inlineID is room for an actor ID ("mc1" and 40 hex digits) and more.
const inlineID = 46

// patientKey is the key an entry holds.
func patientKey(e *patient) string {
	if e.idLen == 0 {
		return e.long
	}
	return unsafe.String(&e.id[0], e.idLen)
}

// patientEntry returns p's entry, or nil; the caller holds the lock.
func (c *cache) patientEntry(p string) *patient {
	if c.patients == nil {
		return nil
	}
	return c.patients.Get(p)
}

// epochNums are one patient's current epoch numbers: n[i] is
// consent.Categories[i]'s when bit i of have is set.
type epochNums struct {
	have uint16
	n    [14]uint64
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
	if r, ok := c.records[id]; ok {
		return *r, true
	}
	return Record{}, false
}

func (c *cache) putRecord(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.records[r.ID]; ok {
		return
	}
	if c.records == nil || len(c.records) >= maxCachedRecords {
		c.records, c.recordMem, c.recordText = map[string]*Record{}, slab.Of[Record]{}, slab.Text{}
	}
	p := c.recordMem.New()
	*p = r
	all := c.recordText.Concat(r.ID, r.Patient, r.Author, r.Category, r.ContentType, r.Ciphertext, r.Commitment, r.EpochEnv, r.SelfEnv)
	for _, s := range []*string{&p.ID, &p.Patient, &p.Author, &p.Category, &p.ContentType, &p.Ciphertext, &p.Commitment, &p.EpochEnv, &p.SelfEnv} {
		*s, all = all[:len(*s)], all[len(*s):]
	}
	c.records[p.ID] = p
}

func (c *cache) actor(id string) (*Actor, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.actors == nil {
		return nil, false
	}
	a := c.actors.Get(id)
	return a, a != nil
}

// putActor caches a copy of a and returns it (or the copy already
// cached: actors never change).
func (c *cache) putActor(a *Actor) *Actor {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.actors == nil || c.actors.Len() >= maxCached {
		c.actors, c.actorMem, c.actorText = flatmap.New(actorID), slab.Of[Actor]{}, slab.Text{}
	}
	if old := c.actors.Get(a.ID); old != nil {
		return old
	}
	p := c.actorMem.New()
	*p = *a
	all := c.actorText.Concat(a.ID, a.Public, a.Name, a.Role, a.Org)
	for _, s := range []*string{&p.ID, &p.Public, &p.Name, &p.Role, &p.Org} {
		*s, all = all[:len(*s)], all[len(*s):]
	}
	// Members are who ask under consents (requesterOf); any other actor
	// that does is interned as it asks. Interning every patient too left a
	// few objects each in the interning map for the garbage collector to
	// mark on every cycle, and made no decision faster.
	if p.Kind == KindMember {
		p.requester = consent.Requester{ID: p.ID, Role: p.Role, Org: p.Org}.Intern()
		p.ID, p.Org = p.requester.ID, p.requester.Org // the same strings, so requesterOf compares pointers
	}
	c.actors.Put(p)
	return p
}

func actorID(a *Actor) string { return a.ID }

func (c *cache) patientConsents(p string) (*consent.Set, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.patientEntry(p); e != nil && e.hasSet {
		return &e.set, true
	}
	return nil, false
}

// actorAndConsents returns the cached actor of who and the cached
// consents of patient (each nil if not cached): the two lookups a consent
// decision makes, begun together so that the CPU waits for both indexes'
// slots at once, and then for both entries.
func (c *cache) actorAndConsents(who, patient string) (*Actor, *consent.Set) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.actors == nil || c.patients == nil {
		return nil, nil
	}
	pa, pp := c.actors.Begin(who), c.patients.Begin(patient)
	act, e := pa.Get(who), pp.Get(patient)
	if e == nil || !e.hasSet {
		return act, nil
	}
	return act, &e.set
}

// putConsents caches patient p's consents, read at generation gen, and
// returns them as a Set (not cached if a commit forgot p since).
func (c *cache) putConsents(gen uint64, p string, cs []consent.Consent) *consent.Set {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return consent.NewSet(cs)
	}
	e := c.patient(p)
	if !e.hasSet { // else another reader, at the same generation, was first
		e.set.Init(c.setMem, cs)
		e.hasSet = true
	}
	return &e.set
}

// patient returns p's entry, made if it has none; the caller holds the
// write lock. A new entry keeps its own copy of the ID: p may be a window
// on a transaction's or a record's bytes, which the entry would otherwise
// keep alive.
func (c *cache) patient(p string) *patient {
	if e := c.patientEntry(p); e != nil {
		return e
	}
	c.roomForPatients()
	e := c.patientMem.New()
	if len(p) > 0 && len(p) <= len(e.id) {
		e.idLen = uint8(copy(e.id[:], p))
	} else {
		e.long = c.longIDs.String(p)
	}
	c.patients.Put(e)
	return e
}

// roomForPatients starts the patients' map and memory afresh when the map
// is full or when the memory holds more forgotten entries than live ones;
// the caller holds the write lock.
func (c *cache) roomForPatients() {
	if c.patients != nil && c.patients.Len() < maxCached && c.patientMem.Len() <= 2*c.patients.Len()+4096 {
		return
	}
	c.patients, c.patientMem, c.setMem, c.longIDs = flatmap.New(patientKey), slab.Of[patient]{}, new(consent.Memory), slab.Text{}
}

func (c *cache) epoch(patient, category string) (uint64, bool) {
	i := slices.Index(consent.Categories, category)
	if i < 0 {
		return 0, false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.patientEntry(patient)
	if e == nil {
		return 0, false
	}
	return e.epochs.n[i], e.epochs.have&(1<<i) != 0
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
	e := &c.patient(patient).epochs
	e.n[i], e.have = n, e.have|1<<i
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
	if c.patients == nil {
		return
	}
	for p := range patients {
		c.patients.Delete(p)
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
