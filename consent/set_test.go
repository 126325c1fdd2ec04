package consent

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"unsafe"
)

// chooser picks the next choice among n.
type chooser func(n int) int

func pick[T any](next chooser, from ...T) T { return from[next(len(from))] }

// Edge values for consents and requests: equal and unequal grantees with
// the same tag, the sensitive boundary, words outside the vocabulary,
// window boundaries.
var (
	setIDs        = []string{"m1", "m2", "org1", "", "xtagtagtag", "ytagtagtag", "mc1aaaaaaaaaaaa"}
	setCategories = [][]string{{All}, {All, "genetic"}, {"laboratory"}, {"mental-health"}, {"laboratory", "genetic"}, {"bogus"}, {}}
	setPurposes   = [][]string{{"treatment"}, {"payment", "research"}, {}, {"bogus"}, Purposes}
	setActions    = [][]string{{"read"}, {"write"}, {"read", "write"}, {}, {"delete"}}
	setConditions = []string{"", `requester.role == "physician"`, `int(requester.id) > 0`, "broken"}
	setTimes      = []int64{t0 - 1, t0, t0 + 10, t0 + 99, t0 + 100, 1<<63 - 1}
)

// often draws the first value half the time and any value otherwise, so
// that allowing requests are common.
func often[T any](next chooser, from ...T) T {
	if next(2) == 0 {
		return from[0]
	}
	return pick(next, from...)
}

// randomConsents makes up to four consents, IDs in order.
func randomConsents(next chooser) []Consent {
	cs := make([]Consent, next(5))
	for i := range cs {
		cs[i] = Consent{ID: fmt.Sprintf("c%d", i), Patient: "p1",
			Grantee: often(next, setIDs...), GranteeIsOrg: next(3) == 0,
			Categories: often(next, setCategories...), Purposes: often(next, setPurposes...), Actions: often(next, setActions...),
			Start: t0, Until: pick(next, int64(0), t0+100), Revoked: next(4) == 0, Condition: often(next, setConditions...)}
	}
	return cs
}

func randomRequest(next chooser) Request {
	return Request{Requester: Requester{ID: often(next, setIDs...), Role: pick(next, "physician", "nurse"), Org: often(next, append([]string{"org1"}, setIDs...)...)},
		Action: often(next, "read", "write", "delete", ""), Purpose: often(next, "treatment", "research", "", "bogus"),
		Category: often(next, "laboratory", "genetic", "mental-health", "imaging", All, "bogus"), Author: "a1", Time: pick(next, setTimes...)}
}

// setCompile compiles conditions, failing on "broken" as a broken program
// cache would.
func setCompile(c Consent) (*Program, error) {
	if c.Condition == "broken" {
		return nil, errors.New("cache broken")
	}
	return Compile(c.Condition)
}

// sameDecision fails unless the Set decides req exactly as Evaluate does,
// with its requester as given, interned, and interned before its ID and
// organization were changed to req's, whether to other strings or to
// prefixes of the interned ones (handles made for the old ones must not
// match).
func sameDecision(t *testing.T, cs []Consent, req Request) {
	t.Helper()
	want, wantErr := Evaluate(cs, req, setCompile)
	set := NewSet(cs)
	interned, stale := req, req
	interned.Requester = req.Requester.Intern()
	stale.Requester = Requester{ID: req.Requester.ID + "x", Role: req.Requester.Role, Org: "x" + req.Requester.Org}.Intern()
	stale.Requester.ID, stale.Requester.Org = req.Requester.ID, req.Requester.Org
	// Changed to a prefix of what was interned: the same bytes in memory,
	// not the same string.
	prefix := req
	prefix.Requester = Requester{ID: req.Requester.ID + "x", Role: req.Requester.Role, Org: req.Requester.Org + "x"}.Intern()
	prefix.Requester.ID, prefix.Requester.Org = prefix.Requester.ID[:len(req.Requester.ID)], prefix.Requester.Org[:len(req.Requester.Org)]
	for _, r := range []Request{req, interned, stale, prefix} {
		got, gotErr := set.Evaluate(r, setCompile)
		if got != want || fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("consents %+v\nrequest %+v\nSet: %+v, %v\nEvaluate: %+v, %v", cs, r, got, gotErr, want, wantErr)
		}
	}
}

// TestSetDecidesAsEvaluate compares the two on many random consent sets
// and requests drawn from edge values, and checks both outcomes occur.
func TestSetDecidesAsEvaluate(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	next := func(n int) int { return r.IntN(n) }
	allowed, refused := 0, 0
	for range 50_000 {
		cs, req := randomConsents(next), randomRequest(next)
		sameDecision(t, cs, req)
		if d, _ := Evaluate(cs, req, setCompile); d.Allowed {
			allowed++
		} else {
			refused++
		}
	}
	if allowed < 1000 || refused < 1000 {
		t.Fatalf("the draw is lopsided: %d allowed, %d refused", allowed, refused)
	}
}

// TestSetCoversTheRules walks the rule boundaries Covers is tested on, with
// a consent the Set must rule out ahead of the one that decides.
func TestSetCoversTheRules(t *testing.T) {
	other := grant(func(c *Consent) { c.ID, c.Grantee = "c0", "m2" })
	for _, tc := range []struct {
		name string
		c    Consent
		r    Request
	}{
		{"plain", grant(nil), ask(nil)},
		{"all excludes genetic", grant(nil), ask(func(r *Request) { r.Category = "genetic" })},
		{"named sensitive", grant(func(c *Consent) { c.Categories = []string{"mental-health"} }), ask(func(r *Request) { r.Category = "mental-health" })},
		{"org grant", grant(func(c *Consent) { c.Grantee, c.GranteeIsOrg = "org1", true }), ask(func(r *Request) { r.Requester.ID = "m2" })},
		{"member grant ignores org", grant(func(c *Consent) { c.Grantee = "org1" }), ask(func(r *Request) { r.Requester.ID = "m2" })},
		{"empty org", grant(func(c *Consent) { c.Grantee, c.GranteeIsOrg = "", true }), ask(func(r *Request) { r.Requester.Org = "" })},
		{"same tag, other grantee", grant(func(c *Consent) { c.Grantee = "ztagtagtag" }), ask(func(r *Request) { r.Requester.ID = "xtagtagtag" })},
		{"same tag, other org", grant(func(c *Consent) { c.Grantee, c.GranteeIsOrg = "ztagtagtag", true }), ask(func(r *Request) { r.Requester.Org = "xtagtagtag" })},
		{"grant to a longer ID", grant(func(c *Consent) { c.Grantee = "m1x" }), ask(nil)},
		{"grant to a longer org", grant(func(c *Consent) { c.Grantee, c.GranteeIsOrg = "org1x", true }), ask(nil)},
		{"before start", grant(nil), ask(func(r *Request) { r.Time = t0 - 1 })},
		{"until itself", grant(func(c *Consent) { c.Until = t0 + 100 }), ask(func(r *Request) { r.Time = t0 + 100 })},
		{"revoked", grant(func(c *Consent) { c.Revoked = true }), ask(nil)},
		{"write without purpose", grant(func(c *Consent) { c.Actions = []string{"write"} }), ask(func(r *Request) { r.Action, r.Purpose = "write", "" })},
		{"read without purpose", grant(nil), ask(func(r *Request) { r.Purpose = "" })},
		{"unknown action", grant(nil), ask(func(r *Request) { r.Action = "delete" })},
		{"condition holds", grant(func(c *Consent) { c.Condition = `requester.role == "physician"` }), ask(nil)},
		{"condition fails", grant(func(c *Consent) { c.Condition = `requester.role == "nurse"` }), ask(nil)},
		{"condition errors", grant(func(c *Consent) { c.Condition = `int(requester.id) > 0` }), ask(nil)},
		{"compiler fails", grant(func(c *Consent) { c.Condition = "broken" }), ask(nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sameDecision(t, []Consent{tc.c}, tc.r)
			sameDecision(t, []Consent{other, tc.c}, tc.r)
			sameDecision(t, []Consent{tc.c, other}, tc.r)
		})
	}
}

// TestVocabularyFitsRuleBits: a rule keeps each vocabulary in a word.
func TestVocabularyFitsRuleBits(t *testing.T) {
	if len(Categories) > 31 || len(Purposes) > 16 || len(Actions) > 8 {
		t.Fatalf("%d categories, %d purposes, %d actions: widen the rule's bit fields", len(Categories), len(Purposes), len(Actions))
	}
}

// FuzzSet draws consent sets and requests from fuzzed bytes; the Set must
// decide every one as Evaluate does.
func FuzzSet(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 2})
	f.Add([]byte("\x04\x05\x01\x04\x02\x03\x01\x00\x02\x06\x03\x02\x01\x01\x00\x03\x02\x01\x04\x05"))
	f.Fuzz(func(t *testing.T, b []byte) {
		next := func(n int) int {
			if len(b) == 0 {
				return 0
			}
			v := int(b[0]) % n
			b = b[1:]
			return v
		}
		sameDecision(t, randomConsents(next), randomRequest(next))
	})
}

// TestNewSetSharesStrings: a Set's consents equal the ones it was made
// from, hold the vocabulary's own words, one patient string and the
// interned grantee, and the caller's consents keep their own strings.
func TestNewSetSharesStrings(t *testing.T) {
	decode := func(s string) []Consent {
		var cs []Consent
		if err := json.Unmarshal([]byte(s), &cs); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	const js = `[{"id":"c1","patient":"p1","grantee":"m1","categories":["all","genetic"],"purposes":["treatment"],"actions":["read"],"start":1},
		{"id":"c2","patient":"p1","grantee":"org1","grantee_is_org":true,"categories":["laboratory","imaging"],"actions":["read","write"],"start":2}]`
	in := decode(js)
	before := unsafe.StringData(in[0].Categories[1])
	s := NewSet(in)
	if !reflect.DeepEqual(s.Consents(), decode(js)) {
		t.Fatalf("NewSet changed the consents:\n%+v\nwant\n%+v", s.Consents(), decode(js))
	}
	if unsafe.StringData(in[0].Categories[1]) != before {
		t.Error("NewSet rewrote the caller's consents")
	}
	got := s.Consents()
	same := func(what, a, b string) {
		t.Helper()
		if unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("%s %q not shared", what, a)
		}
	}
	same("category", got[0].Categories[1], Categories[slices.Index(Categories, "genetic")])
	same("all", got[0].Categories[0], All)
	same("purpose", got[0].Purposes[0], Purposes[0])
	same("action", got[1].Actions[1], ActionWrite)
	same("patient", got[1].Patient, got[0].Patient)
	same("grantee", NewSet(decode(js)).Consents()[0].Grantee, got[0].Grantee)
	if got[1].Purposes != nil {
		t.Errorf("a consent without purposes got %q", got[1].Purposes)
	}
}

// TestNewSetAllocations: a cached Set is few objects for the garbage
// collector to mark on every cycle. Two consents take three allocations:
// the Set (which holds up to two consents and rules), one string (the
// patient, each reason with its consent ID, each condition) and one array
// of list words; their grantees are interned already.
func TestNewSetAllocations(t *testing.T) {
	var in []Consent
	if err := json.Unmarshal([]byte(`[{"id":"c1","patient":"p1","grantee":"m1","categories":["all","genetic"],"purposes":["treatment"],"actions":["read"],"start":1,"condition":"request.time > 0"},
		{"id":"c2","patient":"p1","grantee":"org1","grantee_is_org":true,"categories":["laboratory","imaging"],"purposes":["treatment"],"actions":["read","write"],"start":2}]`), &in); err != nil {
		t.Fatal(err)
	}
	s := NewSet(in)
	if n := testing.AllocsPerRun(100, func() { s = NewSet(in) }); n > 3 {
		t.Errorf("NewSet of two consents: %v allocations, want at most 3", n)
	}
	got := s.Consents()
	for i, c := range got {
		d, err := s.Evaluate(Request{Requester: Requester{ID: c.Grantee, Org: c.Grantee}, Action: ActionRead, Purpose: "treatment",
			Category: "laboratory", Time: 10}, func(Consent) (*Program, error) { return Compile("true") })
		if err != nil || !d.Allowed || d.ConsentID != in[i].ID || d.Reason != "allowed by consent "+in[i].ID {
			t.Errorf("consent %d: %+v, %v", i, d, err)
		}
	}
	if got[0].Condition != in[0].Condition || got[1].Condition != "" || got[0].ID != "c1" || got[1].Patient != "p1" {
		t.Errorf("packed strings wrong: %+v", got)
	}
	if got = append(got, Consent{ID: "c3"}); s.Consents()[1].ID != "c2" || len(s.Consents()) != 2 {
		t.Error("appending to Consents() wrote into the Set")
	}
}

// TestSetInit: Sets made in place in a Memory decide as NewSet's do,
// cost no allocation of their own once the Memory's blocks have room, and
// keep their strings when many more Sets are made after them.
func TestSetInit(t *testing.T) {
	var in []Consent
	if err := json.Unmarshal([]byte(`[{"id":"c1","patient":"p1","grantee":"m1","categories":["all","genetic"],"purposes":["treatment"],"actions":["read"],"start":1,"condition":"request.time > 0"},
		{"id":"c2","patient":"p1","grantee":"org1","grantee_is_org":true,"categories":["laboratory","imaging"],"purposes":["treatment"],"actions":["read","write"],"start":2}]`), &in); err != nil {
		t.Fatal(err)
	}
	var m Memory
	first := new(Set)
	first.Init(&m, in)
	sets := make([]Set, 10_101)
	k := 0
	if n := testing.AllocsPerRun(100, func() { sets[k].Init(&m, in); k++ }); n >= 1 {
		t.Errorf("Init of two consents: %v allocations a Set, want under 1 (the blocks' own, shared)", n)
	}
	for ; k < len(sets); k++ {
		sets[k].Init(&m, in[1:])
	}
	if got := sets[len(sets)-1].Consents(); len(got) != 1 || got[0].ID != "c2" || got[0].Patient != "p1" {
		t.Errorf("the last Set made holds %+v, want c2 of p1", got)
	}
	// Made again over a Set whose consent had a condition, a consent
	// without one needs no compiler: nothing of the first is left.
	again := new(Set)
	again.Init(&m, in[:1])
	member := Consent{ID: "c3", Patient: "p1", Grantee: "m1", Categories: []string{"laboratory"}, Purposes: []string{"treatment"}, Actions: []string{"read"}, Start: 1}
	again.Init(&m, []Consent{member})
	req := Request{Requester: Requester{ID: "m1"}, Action: ActionRead, Purpose: "treatment", Category: "laboratory", Time: 10}
	if d, err := again.Evaluate(req, nil); err != nil || !d.Allowed || d.ConsentID != "c3" {
		t.Errorf("a Set made again with c3 alone decided %+v, %v; want allowed by c3", d, err)
	}
	if !reflect.DeepEqual(first.Consents(), NewSet(in).Consents()) {
		t.Errorf("Init's consents %+v, NewSet's %+v", first.Consents(), NewSet(in).Consents())
	}
	compile := func(Consent) (*Program, error) { return Compile("true") }
	for _, req := range []Request{
		{Requester: Requester{ID: "m1"}, Action: ActionRead, Purpose: "treatment", Category: "genetic", Time: 10},
		{Requester: Requester{ID: "m2", Org: "org1"}, Action: ActionWrite, Purpose: "treatment", Category: "imaging", Time: 10},
		{Requester: Requester{ID: "m2", Org: "org2"}, Action: ActionRead, Purpose: "treatment", Category: "imaging", Time: 10},
	} {
		want, werr := NewSet(in).Evaluate(req, compile)
		got, gerr := first.Evaluate(req, compile)
		if got != want || (gerr == nil) != (werr == nil) {
			t.Errorf("%+v: Init's Set decided %+v, %v; NewSet's %+v, %v", req, got, gerr, want, werr)
		}
	}
}
