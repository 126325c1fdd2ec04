package consent

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestVocabularies(t *testing.T) {
	if len(Categories) != 14 || len(Purposes) != 5 || len(Actions) != 2 || len(Roles) != 5 {
		t.Fatalf("vocabulary sizes changed: %d %d %d %d", len(Categories), len(Purposes), len(Actions), len(Roles))
	}
	var sens []string
	for _, c := range Categories {
		if !ValidCategory(c) {
			t.Errorf("ValidCategory(%q) = false", c)
		}
		if IsSensitive(c) {
			sens = append(sens, c)
		}
	}
	want := []string{"mental-health", "substance-use", "genetic", "sexual-health"}
	if !slices.Equal(sens, want) {
		t.Errorf("sensitive = %v, want %v", sens, want)
	}
	for _, bad := range []string{"", All, "Laboratory", "x"} {
		if ValidCategory(bad) || ValidPurpose(bad) || ValidAction(bad) || ValidRole(bad) {
			t.Errorf("%q accepted as a vocabulary word", bad)
		}
	}
	for _, w := range Purposes {
		if !ValidPurpose(w) {
			t.Errorf("ValidPurpose(%q) = false", w)
		}
	}
	for _, w := range Roles {
		if !ValidRole(w) {
			t.Errorf("ValidRole(%q) = false", w)
		}
	}
	if !ValidAction("read") || !ValidAction("write") {
		t.Error("read/write not valid actions")
	}
}

func base() Consent {
	return Consent{ID: "c1", Patient: "p1", Grantee: "m1", Start: 100}
}

func TestNormalizeDefaults(t *testing.T) {
	c := base()
	if err := Normalize(&c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Categories, []string{"all"}) || !slices.Equal(c.Purposes, []string{"treatment"}) ||
		!slices.Equal(c.Actions, []string{"read"}) || c.Until != 0 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestNormalizeCanonicalOrder(t *testing.T) {
	a, b := base(), base()
	a.Categories = []string{"laboratory", "imaging", "laboratory", "allergy"}
	b.Categories = []string{"allergy", "laboratory", "imaging"}
	a.Purposes, b.Purposes = []string{"research", "payment", "research"}, []string{"payment", "research"}
	a.Actions, b.Actions = []string{"write", "read", "write"}, []string{"read", "write"}
	orig := slices.Clone(a.Categories)
	for _, c := range []*Consent{&a, &b} {
		if err := Normalize(c); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(a.Categories, b.Categories) || !slices.Equal(a.Purposes, b.Purposes) || !slices.Equal(a.Actions, b.Actions) {
		t.Fatalf("not canonical: %+v vs %+v", a, b)
	}
	if !slices.Equal(a.Categories, []string{"allergy", "imaging", "laboratory"}) {
		t.Fatalf("categories = %v", a.Categories)
	}
	if orig[0] != "laboratory" {
		t.Fatal("Normalize mutated the caller's backing array")
	}
	again := a
	again.Categories = slices.Clone(a.Categories)
	if err := Normalize(&again); err != nil || !slices.Equal(again.Categories, a.Categories) {
		t.Fatalf("not idempotent: %v %v", again.Categories, err)
	}
}

func TestNormalizeRejects(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Consent)
		want string
	}{
		{"unknown category", func(c *Consent) { c.Categories = []string{"xray"} }, "allowed: all, demographics"},
		{"unknown purpose", func(c *Consent) { c.Purposes = []string{"marketing"} }, "allowed: treatment, payment"},
		{"unknown action", func(c *Consent) { c.Actions = []string{"delete"} }, "allowed: read, write"},
		{"all with non-sensitive", func(c *Consent) { c.Categories = []string{"all", "laboratory"} }, "already covered"},
		{"until equals start", func(c *Consent) { c.Until = c.Start }, "until must be after"},
		{"until before start", func(c *Consent) { c.Until = c.Start - 1 }, "until must be after"},
		{"no grantee", func(c *Consent) { c.Grantee = "" }, "required"},
		{"no patient", func(c *Consent) { c.Patient = "" }, "required"},
		{"bad condition", func(c *Consent) { c.Condition = "1 + 1" }, "result must be bool"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := Normalize(&c)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func TestNormalizeAccepts(t *testing.T) {
	c := base()
	c.Categories = []string{"genetic", "all", "mental-health"}
	c.Until = c.Start + 1
	c.Condition = `requester.role == "physician"`
	if err := Normalize(&c); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Categories, []string{"all", "genetic", "mental-health"}) {
		t.Fatalf("categories = %v", c.Categories)
	}
}

// TestNormalizeWithUsesItsCompiler: NormalizeWith compiles a condition
// with the function it is given (a caller's cache), once, and not at all
// without a condition; the function's refusal refuses the consent.
func TestNormalizeWithUsesItsCompiler(t *testing.T) {
	calls := 0
	compile := func(c Consent) (*Program, error) {
		calls++
		return Compile(c.Condition)
	}
	c := Consent{Patient: "p", Grantee: "g", Condition: `requester.role == "physician"`}
	if err := NormalizeWith(&c, compile); err != nil || calls != 1 {
		t.Fatalf("NormalizeWith with a condition: %v, %d compilations; want nil, 1", err, calls)
	}
	c = Consent{Patient: "p", Grantee: "g"}
	if err := NormalizeWith(&c, compile); err != nil || calls != 1 {
		t.Fatalf("NormalizeWith without a condition: %v, %d compilations; want nil, still 1", err, calls)
	}
	refuse := func(Consent) (*Program, error) { return nil, ErrCondition }
	c = Consent{Patient: "p", Grantee: "g", Condition: "true"}
	if err := NormalizeWith(&c, refuse); !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrCondition) {
		t.Fatalf("NormalizeWith with a refusing compiler = %v; want ErrInvalid wrapping ErrCondition", err)
	}
}
