package consent

import (
	"errors"
	"fmt"
	"slices"
	"unique"
	"unsafe"
)

// ErrDenied is wrapped by every error from Covers, so callers can tell a
// refusal (answer 403) from a malformed request.
var ErrDenied = errors.New("access denied")

// Requester is who asks: a member's ID, its role and its organization.
type Requester struct {
	ID   string `json:"id"`
	Role string `json:"role"`
	Org  string `json:"org"`

	// ID and Org interned by Intern, or zero: a Set interns them itself.
	id, org unique.Handle[string]
	// The strings the handles hold, which Intern set ID and Org to: while
	// ID and Org are still these, by address and length, the handles name
	// them, and checking so reads neither handle's memory.
	idText, orgText string
}

// Intern returns r with its ID and organization interned, for a caller that
// keeps one Requester to decide many requests: a Set then matches it
// against each consent's grantee without interning it again.
func (r Requester) Intern() Requester {
	r.id, r.org = unique.Make(r.ID), unique.Make(r.Org)
	r.ID, r.Org = r.id.Value(), r.org.Value()
	r.idText, r.orgText = r.ID, r.Org
	return r
}

// handles returns r's ID and organization interned. Handles Intern made
// are used only while they still name r's fields, so a Requester changed
// after Intern is never matched by its old ID.
func (r *Requester) handles() (id, org unique.Handle[string]) {
	id, org = r.id, r.org
	if id == (unique.Handle[string]{}) || !same(r.ID, r.idText) {
		id = unique.Make(r.ID)
	}
	if org == (unique.Handle[string]{}) || !same(r.Org, r.orgText) {
		org = unique.Make(r.Org)
	}
	return id, org
}

// same reports whether a and b are one string: the same bytes in memory,
// and so equal without reading them. A decision's requester was interned
// long before, and at 100,000 patients its handles' memory is seldom in
// the CPU's caches: comparing by their values cost two memory stalls.
func same(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

// Request is one attempted access to one record. Time is the block time in
// unix nanoseconds, so every node judges it at the same instant.
type Request struct {
	Requester Requester `json:"requester"`
	Action    string    `json:"action"`
	Purpose   string    `json:"purpose"`
	Category  string    `json:"category"`
	Author    string    `json:"author"`
	Time      int64     `json:"time"`
}

// Decision is the outcome of Evaluate. Reason is meant for the requester and
// the audit log: it names only IDs and vocabulary words, never record data.
type Decision struct {
	Allowed   bool   `json:"allowed"`
	ConsentID string `json:"consent_id,omitempty"`
	Reason    string `json:"reason"`
}

// Covers reports whether c allows req, leaving its condition aside (the
// condition needs a compiled program; see Evaluate). It returns nil when it
// does, and otherwise an error wrapping ErrDenied that says which rule failed.
// The caller must pass only consents of the record's patient.
func Covers(c Consent, req Request) error {
	if reason := denial(c, req); reason != "" {
		return denied(c, reason)
	}
	return nil
}

// checks run in this order; the first failure names the reason.
var checks = []func(Consent, Request) string{
	checkGrantee, checkWindow, checkAction, checkCategory, checkPurpose,
}

// denial returns why c does not cover req, or "" if it does. Evaluate uses it
// directly so that skipping a consent costs no error allocation.
func denial(c Consent, req Request) string {
	for _, check := range checks {
		if reason := check(c, req); reason != "" {
			return reason
		}
	}
	return ""
}

func denied(c Consent, reason string) error {
	return fmt.Errorf("%w: consent %s: %s", ErrDenied, c.ID, reason)
}

// checkGrantee matches the requester by its own ID, or, for an organization
// grant, by its organization. Empty IDs never match, so a requester with no
// organization cannot slip through a malformed grant.
func checkGrantee(c Consent, req Request) string {
	r := req.Requester
	switch {
	case c.Grantee == "":
		return "grantee mismatch"
	case r.ID == c.Grantee:
		return ""
	case c.GranteeIsOrg && r.Org == c.Grantee:
		return ""
	}
	return "grantee mismatch"
}

// checkWindow applies revocation and the half-open window [Start, Until):
// the expiry instant itself is already expired, so a grant ending at block
// time T serves nothing in the block stamped T.
func checkWindow(c Consent, req Request) string {
	switch {
	case c.Revoked:
		return "revoked"
	case req.Time < c.Start:
		return "not yet active"
	case c.Until != 0 && req.Time >= c.Until:
		return "expired"
	}
	return ""
}

func checkAction(c Consent, req Request) string {
	if !ValidAction(req.Action) || !slices.Contains(c.Actions, req.Action) {
		return fmt.Sprintf("action %q not granted", safeWord(req.Action, ValidAction))
	}
	return ""
}

// checkCategory lets "all" cover every non-sensitive category, while a
// sensitive one must be named, as the SPEC requires.
func checkCategory(c Consent, req Request) string {
	cat := req.Category
	if !ValidCategory(cat) {
		return "unknown category"
	}
	if slices.Contains(c.Categories, cat) || (!IsSensitive(cat) && slices.Contains(c.Categories, All)) {
		return ""
	}
	return fmt.Sprintf("category %q not covered", cat)
}

// checkPurpose skips a write that states no purpose: authoring a record is
// its own purpose, and the CLI's record put takes no --purpose.
func checkPurpose(c Consent, req Request) string {
	if req.Action == ActionWrite && req.Purpose == "" {
		return ""
	}
	if !ValidPurpose(req.Purpose) || !slices.Contains(c.Purposes, req.Purpose) {
		return fmt.Sprintf("purpose %q not granted", safeWord(req.Purpose, ValidPurpose))
	}
	return ""
}

// safeWord echoes a request field into a reason only when it is a vocabulary
// word, so arbitrary caller text never lands in logs or replies.
func safeWord(s string, valid func(string) bool) string {
	if valid(s) {
		return s
	}
	return "(unknown)"
}

// Evaluate returns the first consent, in the given order, that covers req and
// whose condition (if any) holds. Callers pass consents sorted by ID so every
// node picks the same one. A refusal is a Decision with Allowed false and a
// nil error; the error is only for internal failures: a nil compile function
// or one that fails. Those are reported rather than skipped because a
// node-local fault must not pass for a deterministic decision.
func Evaluate(consents []Consent, req Request, compile func(Consent) (*Program, error)) (Decision, error) {
	var first error // why the first consent aimed at this requester failed
	for _, c := range consents {
		var err error
		if reason := denial(c, req); reason != "" {
			if first == nil && checkGrantee(c, req) == "" {
				first = denied(c, reason)
			}
			continue
		}
		if c.Condition != "" {
			if err = holds(c, req, compile); err != nil && !errors.Is(err, ErrDenied) {
				return Decision{Reason: "internal error"}, err
			}
		}
		if err == nil {
			return Decision{Allowed: true, ConsentID: c.ID, Reason: "allowed by consent " + c.ID}, nil
		}
		if first == nil {
			first = err
		}
	}
	if first == nil {
		return Decision{Reason: "no consent grants this requester"}, nil
	}
	return Decision{Reason: first.Error()}, nil
}

// holds compiles and runs c's condition. A false result or an evaluation
// error (including a cost overrun) is a denial wrapping ErrDenied; the
// evaluator's message is dropped because it may quote request values.
func holds(c Consent, req Request, compile func(Consent) (*Program, error)) error {
	if compile == nil {
		return errors.New("consent: no condition compiler given")
	}
	p, err := compile(c)
	if err != nil {
		return fmt.Errorf("consent: compiling condition of %s: %w", c.ID, err)
	}
	if p == nil {
		return fmt.Errorf("consent: compiling condition of %s: no program", c.ID)
	}
	ok, err := p.Eval(req)
	switch {
	case err != nil:
		return fmt.Errorf("%w: consent %s: condition failed to evaluate", ErrDenied, c.ID)
	case !ok:
		return fmt.Errorf("%w: consent %s: condition not met", ErrDenied, c.ID)
	}
	return nil
}
