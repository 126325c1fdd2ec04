package consent

import (
	"errors"
	"strings"
	"testing"
)

const t0 = int64(1_700_000_000_000_000_000)

func grant(edit func(*Consent)) Consent {
	c := Consent{ID: "c1", Patient: "p1", Grantee: "m1", Categories: []string{"all"},
		Purposes: []string{"treatment"}, Actions: []string{"read"}, Start: t0}
	if edit != nil {
		edit(&c)
	}
	return c
}

func ask(edit func(*Request)) Request {
	r := Request{Requester: Requester{ID: "m1", Role: "physician", Org: "org1"},
		Action: "read", Purpose: "treatment", Category: "laboratory", Author: "a1", Time: t0 + 10}
	if edit != nil {
		edit(&r)
	}
	return r
}

// TestCovers walks every consent rule of SPEC.md, each with an allowed and a
// denied side.
func TestCovers(t *testing.T) {
	cases := []struct {
		name string
		c    Consent
		r    Request
		deny string // "" means allowed
	}{
		{"plain grant", grant(nil), ask(nil), ""},
		{"all covers non-sensitive", grant(nil), ask(func(r *Request) { r.Category = "clinical-note" }), ""},
		{"all excludes mental-health", grant(nil), ask(func(r *Request) { r.Category = "mental-health" }), "not covered"},
		{"all excludes substance-use", grant(nil), ask(func(r *Request) { r.Category = "substance-use" }), "not covered"},
		{"all excludes genetic", grant(nil), ask(func(r *Request) { r.Category = "genetic" }), "not covered"},
		{"all excludes sexual-health", grant(nil), ask(func(r *Request) { r.Category = "sexual-health" }), "not covered"},
		{"named sensitive covered", grant(func(c *Consent) { c.Categories = []string{"all", "genetic"} }),
			ask(func(r *Request) { r.Category = "genetic" }), ""},
		{"named sensitive alone", grant(func(c *Consent) { c.Categories = []string{"mental-health"} }),
			ask(func(r *Request) { r.Category = "mental-health" }), ""},
		{"other sensitive not covered", grant(func(c *Consent) { c.Categories = []string{"all", "genetic"} }),
			ask(func(r *Request) { r.Category = "mental-health" }), "not covered"},
		{"named list excludes others", grant(func(c *Consent) { c.Categories = []string{"imaging"} }), ask(nil), "not covered"},
		{"unknown category", grant(nil), ask(func(r *Request) { r.Category = "all" }), "unknown category"},
		{"purpose listed", grant(func(c *Consent) { c.Purposes = []string{"payment", "research"} }),
			ask(func(r *Request) { r.Purpose = "research" }), ""},
		{"purpose not listed", grant(nil), ask(func(r *Request) { r.Purpose = "research" }), "purpose"},
		{"read purpose required", grant(nil), ask(func(r *Request) { r.Purpose = "" }), "purpose"},
		{"read not granted on write-only", grant(func(c *Consent) { c.Actions = []string{"write"} }), ask(nil), "action"},
		{"write granted", grant(func(c *Consent) { c.Actions = []string{"read", "write"} }),
			ask(func(r *Request) { r.Action = "write" }), ""},
		{"write not granted", grant(nil), ask(func(r *Request) { r.Action = "write" }), "action"},
		{"write without purpose", grant(func(c *Consent) { c.Actions = []string{"write"} }),
			ask(func(r *Request) { r.Action, r.Purpose = "write", "" }), ""},
		{"write with unlisted purpose", grant(func(c *Consent) { c.Actions = []string{"write"} }),
			ask(func(r *Request) { r.Action, r.Purpose = "write", "payment" }), "purpose"},
		{"unknown action", grant(nil), ask(func(r *Request) { r.Action = "delete" }), "action"},
		{"org grant covers member", grant(func(c *Consent) { c.Grantee, c.GranteeIsOrg = "org1", true }),
			ask(func(r *Request) { r.Requester.ID = "m2" }), ""},
		{"org grant excludes other org", grant(func(c *Consent) { c.Grantee, c.GranteeIsOrg = "org1", true }),
			ask(func(r *Request) { r.Requester = Requester{ID: "m3", Org: "org2"} }), "grantee"},
		{"member grant excludes colleague", grant(nil),
			ask(func(r *Request) { r.Requester.ID = "m2" }), "grantee"},
		{"member grant ignores org match", grant(func(c *Consent) { c.Grantee = "org1" }),
			ask(func(r *Request) { r.Requester.ID = "m2" }), "grantee"},
		{"empty org never matches", grant(func(c *Consent) { c.Grantee, c.GranteeIsOrg = "", true }),
			ask(func(r *Request) { r.Requester.Org = "" }), "grantee"},
		{"start boundary allowed", grant(nil), ask(func(r *Request) { r.Time = t0 }), ""},
		{"before start", grant(nil), ask(func(r *Request) { r.Time = t0 - 1 }), "not yet active"},
		{"until-1 allowed", grant(func(c *Consent) { c.Until = t0 + 100 }), ask(func(r *Request) { r.Time = t0 + 99 }), ""},
		{"until itself expired", grant(func(c *Consent) { c.Until = t0 + 100 }), ask(func(r *Request) { r.Time = t0 + 100 }), "expired"},
		{"after until", grant(func(c *Consent) { c.Until = t0 + 100 }), ask(func(r *Request) { r.Time = t0 + 1000 }), "expired"},
		{"no expiry", grant(nil), ask(func(r *Request) { r.Time = 1<<63 - 1 }), ""},
		{"revoked", grant(func(c *Consent) { c.Revoked = true }), ask(nil), "revoked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Covers(tc.c, tc.r)
			switch {
			case tc.deny == "" && err != nil:
				t.Fatalf("denied: %v", err)
			case tc.deny != "" && (!errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), tc.deny)):
				t.Fatalf("err = %v, want ErrDenied with %q", err, tc.deny)
			}
		})
	}
}

func compileCond(c Consent) (*Program, error) { return Compile(c.Condition) }

func TestEvaluateConditions(t *testing.T) {
	cases := []struct {
		name, cond string
		allowed    bool
		reason     string
	}{
		{"true", `requester.role == "physician" && record.category == "laboratory"`, true, "allowed by consent c1"},
		{"false", `requester.role == "nurse"`, false, "condition not met"},
		{"time", `request.time < timestamp("2030-01-01T00:00:00Z")`, true, ""},
		{"time false", `request.time.getFullYear() > 2030`, false, "condition not met"},
		{"author", `record.author == "a1" && request.purpose == "treatment"`, true, ""},
		{"org", `requester.org in ["org1", "org9"] && requester.id.startsWith("m")`, true, ""},
		{"erroring", `int(requester.id) > 0`, false, "failed to evaluate"},
		{"div by zero", `1 / (size(requester.id) - 2) == 0`, false, "failed to evaluate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := grant(func(c *Consent) { c.Condition = tc.cond })
			d, err := Evaluate([]Consent{c}, ask(nil), compileCond)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tc.allowed || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("decision = %+v, want allowed=%v reason~%q", d, tc.allowed, tc.reason)
			}
			if d.Allowed && d.ConsentID != "c1" {
				t.Fatalf("consent id = %q", d.ConsentID)
			}
		})
	}
}

func TestEvaluateOrderAndReasons(t *testing.T) {
	other := grant(func(c *Consent) { c.ID, c.Grantee = "c0", "someone-else" })
	expired := grant(func(c *Consent) { c.ID, c.Until = "c1", t0+1 })
	failing := grant(func(c *Consent) { c.ID, c.Condition = "c2", `requester.role == "nurse"` })
	good := grant(func(c *Consent) { c.ID = "c3" })
	alsoGood := grant(func(c *Consent) { c.ID = "c4" })

	d, err := Evaluate([]Consent{other, expired, failing, good, alsoGood}, ask(nil), compileCond)
	if err != nil || !d.Allowed || d.ConsentID != "c3" {
		t.Fatalf("first match: %+v %v", d, err)
	}
	d, err = Evaluate([]Consent{other, expired, failing}, ask(nil), compileCond)
	if err != nil || d.Allowed || !strings.Contains(d.Reason, "c1: expired") {
		t.Fatalf("denial reason: %+v %v", d, err)
	}
	d, err = Evaluate([]Consent{other}, ask(nil), compileCond)
	if err != nil || d.Allowed || d.Reason != "no consent grants this requester" {
		t.Fatalf("no grantee: %+v %v", d, err)
	}
	d, err = Evaluate(nil, ask(nil), nil)
	if err != nil || d.Allowed {
		t.Fatalf("empty: %+v %v", d, err)
	}
}

func TestEvaluateInternalErrors(t *testing.T) {
	c := grant(func(c *Consent) { c.Condition = "true" })
	if _, err := Evaluate([]Consent{c}, ask(nil), nil); err == nil {
		t.Fatal("nil compiler accepted")
	}
	boom := func(Consent) (*Program, error) { return nil, errors.New("cache broken") }
	d, err := Evaluate([]Consent{c}, ask(nil), boom)
	if err == nil || d.Allowed {
		t.Fatalf("compile failure: %+v %v", d, err)
	}
	// A consent that does not cover the request never needs compiling.
	c.Revoked = true
	if d, err := Evaluate([]Consent{c}, ask(nil), boom); err != nil || d.Allowed {
		t.Fatalf("uncovered consent compiled: %+v %v", d, err)
	}
}

// TestReasonsCarryNoFreeText checks that request text outside the
// vocabularies never reaches a reason.
func TestReasonsCarryNoFreeText(t *testing.T) {
	secret := "HIV-positive John Doe"
	r := ask(func(r *Request) { r.Purpose, r.Action = secret, secret })
	for _, c := range []Consent{grant(nil), grant(func(c *Consent) { c.Actions = []string{"read", "write"} })} {
		if err := Covers(c, r); err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("reason leaks request text: %v", err)
		}
	}
	r = ask(func(r *Request) { r.Requester.Role = secret })
	c := grant(func(c *Consent) { c.Condition = `int(requester.role) > 0` })
	d, _ := Evaluate([]Consent{c}, r, compileCond)
	if d.Allowed || strings.Contains(d.Reason, secret) {
		t.Fatalf("reason leaks request text: %+v", d)
	}
}
