package consent

import (
	"errors"
	"slices"
	"unique"
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
	consents []Consent
	rules    []rule
	inline   [2]rule // rules for up to two consents, in the Set's own memory
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
	s := &Set{consents: slices.Clone(consents)}
	s.rules = s.inline[:]
	if len(consents) > len(s.inline) {
		s.rules = make([]rule, len(consents))
	}
	s.rules = s.rules[:len(consents)]
	for i := range s.consents {
		c := &s.consents[i]
		r := &s.rules[i]
		r.grantee = unique.Make(c.Grantee)
		share(c, s.consents[0].Patient, r.grantee)
		r.allowed = allowedBy + c.ID
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
	return s
}

// share gives c, a Set's own copy of a consent, strings that other
// consents hold too, equal to its own: its words the vocabulary's, its
// lists one array, its patient the Set's first consent's, its grantee the
// interned one. A node caches the consents of every patient it serves, and
// each string and slice the JSON decoder made is an object the garbage
// collector marks on every cycle: shared, a consent holds three (its ID,
// its rule's reason, its words) instead of about thirteen.
func share(c *Consent, patient string, grantee unique.Handle[string]) {
	words := make([]string, 0, len(c.Categories)+len(c.Purposes)+len(c.Actions))
	c.Categories, words = vocabulary(words, c.Categories, Categories)
	c.Purposes, words = vocabulary(words, c.Purposes, Purposes)
	c.Actions, _ = vocabulary(words, c.Actions, Actions)
	if c.Patient == patient {
		c.Patient = patient
	}
	c.Grantee = grantee.Value()
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
func (s *Set) Consents() []Consent { return s.consents }

// Evaluate decides req as Evaluate(s.Consents(), req, compile) does.
func (s *Set) Evaluate(req Request, compile func(Consent) (*Program, error)) (Decision, error) {
	q, ok := prepare(req)
	for i := 0; ok && i < len(s.rules); i++ {
		r := &s.rules[i]
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
