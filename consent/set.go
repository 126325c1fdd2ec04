package consent

import (
	"errors"
	"slices"
	"strings"
	"unique"

	"github.com/medchain/medchain/internal/slab"
)

// Set is one patient's consents, in ID order, prepared for deciding many
// requests. Each consent's grantee, window and vocabulary lists are packed
// into one small rule, so ruling a consent out reads nothing but the rule:
// on a ledger of many patients the consents are seldom in the CPU's cache,
// and walking each one's strings and lists costs a memory stall apiece.
//
// A Set decides exactly as Evaluate on its consents: same consent, same
// reason, same error.
type Set struct {
	// Up to two consents and their rules live in the Set's own memory
	// (inline, inlineGrant): a patient's consents are usually one or two.
	// The rules come first: a decision that allows reads them and not the
	// consents, and a Set inside a larger entry (as the node's cache keeps
	// it) has them in the entry's first cache lines.
	inline      [2]rule
	rules       []rule
	consents    []Consent
	inlineGrant [2]Consent
}

// rule is a consent reduced to what Covers checks, in one cache line. Its
// grantee is interned: matching the requester is one comparison of two
// handles, reading neither string.
type rule struct {
	grantee unique.Handle[string]
	allowed string // the allowing Decision's reason; the consent ID is its tail
	start   int64
	until   int64
	// Bit i of categories is Categories[i]; allBit is All. Bit i of
	// purposes and actions is Purposes[i] and Actions[i]. Words outside
	// the vocabulary get no bit: no valid request can name them.
	categories uint32
	purposes   uint16
	actions    uint8
	flags      uint8
}

// allBit is All's bit in a rule's categories.
const allBit = 1 << 31

// A rule's flags.
const (
	ruleOrg       = 1 << iota // GranteeIsOrg
	ruleUsable                // a non-empty grantee and not revoked
	ruleCondition             // a condition to run after the rule covers
)

const allowedBy = "allowed by consent "

// NewSet prepares consents, which must be one patient's in ID order, for
// Evaluate. The Set keeps a copy, its strings shared (see share); the
// caller's slice is left as it was.
func NewSet(consents []Consent) *Set {
	s := new(Set)
	s.Init(nil, consents)
	return s
}

// Memory holds the strings and word lists of the Sets Init makes in it,
// side by side in a few large blocks (package slab): a node that caches
// every patient's Set gives the garbage collector a few blocks to mark
// instead of objects a patient at random addresses. What a Memory holds
// lives as long as any Set made in it is referenced: drop a Memory with
// the cache that holds its Sets. A Memory is not safe for concurrent use;
// the zero Memory is ready to use.
type Memory struct {
	words slab.Of[string]
	text  slab.Text
}

// Init prepares consents, as NewSet does, into s, replacing whatever s
// held (no one may be using s); their strings and lists go in m (nil:
// allocations of their own). It is NewSet for a Set that lives inside a
// larger value, such as a cache's entry that keeps its patient's ID
// beside the Set, so that one lookup reads both from the same cache
// lines. A Set keeps its first consents in its own memory: it must not be
// copied once made.
func (s *Set) Init(m *Memory, consents []Consent) {
	*s = Set{}
	s.consents, s.rules = s.inlineGrant[:0], s.inline[:0]
	if len(consents) > len(s.inline) {
		s.consents, s.rules = make([]Consent, 0, len(consents)), make([]rule, 0, len(consents))
	}
	s.consents = append(s.consents, consents...)
	s.rules = s.rules[:len(consents)]
	m.share(s.consents, s.rules)
	for i := range s.consents {
		c := &s.consents[i]
		r := &s.rules[i]
		r.start, r.until = c.Start, c.Until
		r.categories = bits(c.Categories, Categories)
		if slices.Contains(c.Categories, All) {
			r.categories |= allBit
		}
		r.purposes = uint16(bits(c.Purposes, Purposes))
		r.actions = uint8(bits(c.Actions, Actions))
		if c.GranteeIsOrg {
			r.flags |= ruleOrg
		}
		if c.Grantee != "" && !c.Revoked {
			r.flags |= ruleUsable
		}
		if c.Condition != "" {
			r.flags |= ruleCondition
		}
	}
}

// newWords returns an empty list with room for n words.
func (m *Memory) newWords(n int) []string {
	if m == nil {
		return make([]string, 0, n)
	}
	return m.words.Slice(n)[:0]
}

// concat returns the parts joined, in m's memory.
func (m *Memory) concat(parts ...string) string {
	if m == nil {
		return strings.Join(parts, "")
	}
	return m.text.Concat(parts...)
}

// share gives cs, a Set's own copy of one patient's consents, and their
// rules strings in as few allocations as it can (in m's memory, if not
// nil): each grantee the interned one; every list's words the
// vocabulary's, all lists in one array; the patient, each rule's reason
// (its consent's ID as the tail) and each condition in one string. A node caches the consents of every
// patient it serves, and each string and slice the JSON decoder made is
// an object the garbage collector marks on every cycle: a Set of two
// consents is three objects (the Set, the string, the array), where it
// kept about nine alive before.
func (m *Memory) share(cs []Consent, rules []rule) {
	if len(cs) == 0 {
		return
	}
	patient := cs[0].Patient
	nwords := 0
	var inline [1 + 3*len(Set{}.inline)]string
	parts := append(inline[:0], patient)
	for i := range cs {
		c := &cs[i]
		parts = append(parts, allowedBy, c.ID, c.Condition)
		nwords += len(c.Categories) + len(c.Purposes) + len(c.Actions)
	}
	all := m.concat(parts...)
	patient, all = all[:len(patient)], all[len(patient):]
	words := m.newWords(nwords)
	for i := range cs {
		c, r := &cs[i], &rules[i]
		r.grantee = unique.Make(c.Grantee)
		c.Grantee = r.grantee.Value()
		n := len(allowedBy) + len(c.ID)
		r.allowed, c.ID = all[:n], all[len(allowedBy):n]
		c.Condition, all = all[n:n+len(c.Condition)], all[n+len(c.Condition):]
		if c.Patient == patient {
			c.Patient = patient
		}
		c.Categories, words = vocabulary(words, c.Categories, Categories)
		c.Purposes, words = vocabulary(words, c.Purposes, Purposes)
		c.Actions, words = vocabulary(words, c.Actions, Actions)
	}
}

// vocabulary appends list to buf, each word that vocab (or All) holds as
// vocab's own string, and returns the appended part and buf. A nil list
// stays nil.
func vocabulary(buf, list, vocab []string) (appended, rest []string) {
	if list == nil {
		return nil, buf
	}
	from := len(buf)
	for _, w := range list {
		if k := slices.Index(vocab, w); k >= 0 {
			w = vocab[k]
		} else if w == All {
			w = All
		}
		buf = append(buf, w)
	}
	return buf[from:len(buf):len(buf)], buf
}

// Consents returns the consents the Set was made from, in ID order.
func (s *Set) Consents() []Consent { return s.consents[:len(s.consents):len(s.consents)] }

// Evaluate decides req as Evaluate(s.Consents(), req, compile) does.
func (s *Set) Evaluate(req Request, compile func(Consent) (*Program, error)) (Decision, error) {
	q, ok := prepare(req)
	rules := s.rules
	if len(rules) <= len(s.inline) {
		// The same rules, addressed from s rather than through the
		// slice, so the CPU need not wait for the slice to load before
		// it loads them: 1 - 3% off a decision at 100,000 patients
		// (BenchmarkAuthorizeRecordScale, p50-ns).
		rules = s.inline[:len(rules)]
	}
	for i := 0; ok && i < len(rules); i++ {
		r := &rules[i]
		if !r.covers(&q) {
			continue
		}
		if r.flags&ruleCondition != 0 {
			err := holds(s.consents[i], req, compile)
			if errors.Is(err, ErrDenied) {
				continue
			}
			if err != nil {
				return Decision{Reason: "internal error"}, err
			}
		}
		return Decision{Allowed: true, ConsentID: r.allowed[len(allowedBy):], Reason: r.allowed}, nil
	}
	// Nothing allows it: Evaluate finds the reason (first refusal aimed at
	// this requester), which only a refusal needs.
	return Evaluate(s.consents, req, compile)
}

// query is a Request's words as rule bits, and its requester's handles.
type query struct {
	category, purpose uint32
	action            uint8
	anyPurpose        bool // a write that states no purpose
	sensitive         bool
	time              int64
	id, org           unique.Handle[string]
}

// prepare reduces req to bits; ok is false when it names an action or
// category outside the vocabulary, which no consent covers.
func prepare(req Request) (q query, ok bool) {
	a, c := slices.Index(Actions, req.Action), slices.Index(Categories, req.Category)
	if a < 0 || c < 0 {
		return q, false
	}
	q.action, q.category, q.sensitive = 1<<a, 1<<c, IsSensitive(req.Category)
	if p := slices.Index(Purposes, req.Purpose); p >= 0 {
		q.purpose = 1 << p
	}
	q.anyPurpose = req.Action == ActionWrite && req.Purpose == ""
	q.time = req.Time
	q.id, q.org = req.Requester.handles()
	return q, true
}

// covers is Covers(c, req) == nil for the rule made from c.
func (r *rule) covers(q *query) bool {
	switch {
	case r.flags&ruleUsable == 0,
		q.time < r.start, r.until != 0 && q.time >= r.until,
		r.actions&q.action == 0,
		r.categories&q.category == 0 && (q.sensitive || r.categories&allBit == 0),
		!q.anyPurpose && uint32(r.purposes)&q.purpose == 0:
		return false
	}
	return r.grantee == q.id || r.flags&ruleOrg != 0 && r.grantee == q.org
}

// bits sets bit i for each vocabulary word vocab[i] in words.
func bits(words, vocab []string) uint32 {
	var b uint32
	for _, w := range words {
		if i := slices.Index(vocab, w); i >= 0 {
			b |= 1 << i
		}
	}
	return b
}
