// Package consent decides, from a patient's consent contracts, whether a
// requester may read or write a record. It is pure: same inputs, same
// decision, on every node.
//
// Nothing here reads a clock, draws randomness, touches the network, uses
// floating point, or lets Go map iteration order reach a result: the package
// runs inside the replicated state machine, where any such dependence would
// split the app hash between nodes.
package consent

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// All is the consent keyword for "every non-sensitive category". It is not a
// record category itself, so ValidCategory rejects it.
const All = "all"

// Categories lists the record categories in their canonical order. The last
// four are sensitive (see IsSensitive). Callers must not modify it.
var Categories = []string{
	"demographics", "vital-signs", "laboratory", "imaging", "medication",
	"allergy", "condition", "procedure", "immunization", "clinical-note",
	"mental-health", "substance-use", "genetic", "sexual-health",
}

// sensitive are the categories that law and patients expect to be shared
// only on explicit request, so "all" never covers them.
var sensitive = Categories[len(Categories)-4:]

// Purposes lists the purposes of use a consent can name.
var Purposes = []string{"treatment", "payment", "operations", "research", "personal"}

// Actions lists what a consent can allow on a record.
var Actions = []string{ActionRead, ActionWrite}

// Roles lists the roles an organization can give its members.
var Roles = []string{"physician", "nurse", "pharmacist", "researcher", "staff"}

// The two actions, named because Covers treats write differently.
const (
	ActionRead  = "read"
	ActionWrite = "write"
)

// ErrInvalid is wrapped by every validation error from Normalize, so callers
// can map it to "bad request" without parsing messages.
var ErrInvalid = errors.New("invalid consent")

// ValidCategory reports whether c is a record category ("all" is not).
func ValidCategory(c string) bool { return slices.Contains(Categories, c) }

// IsSensitive reports whether c is a category that only a consent naming it
// may cover.
func IsSensitive(c string) bool { return slices.Contains(sensitive, c) }

// ValidPurpose reports whether p is a known purpose of use.
func ValidPurpose(p string) bool { return slices.Contains(Purposes, p) }

// ValidAction reports whether a is a known action.
func ValidAction(a string) bool { return slices.Contains(Actions, a) }

// ValidRole reports whether r is a known member role.
func ValidRole(r string) bool { return slices.Contains(Roles, r) }

// Consent is one contract by which a patient lets a grantee (a member, or an
// organization and so all its members) act on some of the patient's records.
// Times are block times in unix nanoseconds, never a node's local clock.
type Consent struct {
	ID           string   `json:"id"`
	Patient      string   `json:"patient"`
	Grantee      string   `json:"grantee"`
	GranteeIsOrg bool     `json:"grantee_is_org"`
	Categories   []string `json:"categories"` // "all" alone, or with sensitive ones named
	Purposes     []string `json:"purposes"`
	Actions      []string `json:"actions"`
	Start        int64    `json:"start"` // block time the grant committed
	Until        int64    `json:"until"` // exclusive end; 0 means no expiry
	Condition    string   `json:"condition,omitempty"`
	Revoked      bool     `json:"revoked"`
}

// Normalize fills in the documented defaults, validates every field and puts
// the lists into one canonical order (sorted, without duplicates), so that two
// nodes, or two encodings of the same grant, store identical bytes. A
// condition is compiled to prove it is well-typed and within the cost limit:
// a grant that could never be evaluated is rejected up front.
func Normalize(c *Consent) error {
	return NormalizeWith(c, func(c Consent) (*Program, error) { return Compile(c.Condition) })
}

// NormalizeWith is Normalize with compile in place of [Compile], as
// [Evaluate] takes it, for a caller that keeps compiled conditions (a
// compilation costs ~0.2 ms, and a grant is normalized in CheckTx and
// again in its block). compile must answer as Compile does.
func NormalizeWith(c *Consent, compile func(Consent) (*Program, error)) error {
	if c.Patient == "" || c.Grantee == "" {
		return fmt.Errorf("%w: patient and grantee are required", ErrInvalid)
	}
	if c.Start < 0 || c.Until < 0 {
		return fmt.Errorf("%w: start and until must not be negative", ErrInvalid)
	}
	if c.Until != 0 && c.Until <= c.Start {
		return fmt.Errorf("%w: until must be after the start of the consent", ErrInvalid)
	}
	var err error
	if c.Categories, err = canonical(c.Categories, All, "category", validConsentCategory, allowedCategories()); err != nil {
		return err
	}
	if err = checkAll(c.Categories); err != nil {
		return err
	}
	if c.Purposes, err = canonical(c.Purposes, Purposes[0], "purpose", ValidPurpose, Purposes); err != nil {
		return err
	}
	if c.Actions, err = canonical(c.Actions, ActionRead, "action", ValidAction, Actions); err != nil {
		return err
	}
	if c.Condition != "" {
		if _, err := compile(*c); err != nil {
			return fmt.Errorf("%w: condition: %w", ErrInvalid, err)
		}
	}
	return nil
}

// canonical returns a sorted, deduplicated copy of list (or [def] when the
// list is empty), after checking each value with valid. It copies so the
// caller's slice is never aliased into stored state.
func canonical(list []string, def, what string, valid func(string) bool, allowed []string) ([]string, error) {
	if len(list) == 0 {
		return []string{def}, nil
	}
	out := slices.Clone(list)
	for _, v := range out {
		if !valid(v) {
			return nil, fmt.Errorf("%w: unknown %s %q (allowed: %s)", ErrInvalid, what, v, strings.Join(allowed, ", "))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkAll rejects "all" next to a non-sensitive category: that name would be
// redundant, and allowing it would give one grant two canonical forms.
func checkAll(cats []string) error {
	if !slices.Contains(cats, All) {
		return nil
	}
	for _, c := range cats {
		if c != All && !IsSensitive(c) {
			return fmt.Errorf("%w: category %q is already covered by %q; name only sensitive categories beside it", ErrInvalid, c, All)
		}
	}
	return nil
}

func validConsentCategory(c string) bool { return c == All || ValidCategory(c) }

func allowedCategories() []string { return append([]string{All}, Categories...) }
