package consent

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// evalCase is a fixed condition and what it must answer, computed in Go.
type evalCase struct {
	src    string
	oracle func(Request) bool
}

var evalCases = []evalCase{
	{`requester.role == "physician"`, func(r Request) bool { return r.Requester.Role == "physician" }},
	{`requester.role in ["physician", "nurse"] && request.purpose == "treatment"`, func(r Request) bool {
		return (r.Requester.Role == "physician" || r.Requester.Role == "nurse") && r.Purpose == "treatment"
	}},
	{`record.category != "genetic" && size(record.author) > 3`, func(r Request) bool {
		return r.Category != "genetic" && utf8.RuneCountInString(r.Author) > 3
	}},
	{`requester.id.startsWith("mc1") || requester.org.endsWith("ff")`, func(r Request) bool {
		return strings.HasPrefix(r.Requester.ID, "mc1") || strings.HasSuffix(r.Requester.Org, "ff")
	}},
	{`requester.id.contains(record.author)`, func(r Request) bool { return strings.Contains(r.Requester.ID, r.Author) }},
	{`requester.id.matches("^mc1[0-9a-f]{4,}$")`, func(r Request) bool {
		return regexp.MustCompile("^mc1[0-9a-f]{4,}$").MatchString(r.Requester.ID)
	}},
	{`request.time < timestamp("2030-01-01T00:00:00Z")`, func(r Request) bool {
		return r.Time < time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	}},
	{`request.time.getHours() >= 8 && request.time.getHours() < 18`, func(r Request) bool {
		h := time.Unix(0, r.Time).UTC().Hour()
		return h >= 8 && h < 18
	}},
	{`request.time.getDayOfWeek() in [1, 2, 3, 4, 5]`, func(r Request) bool {
		d := time.Unix(0, r.Time).UTC().Weekday()
		return d >= time.Monday && d <= time.Friday
	}},
	{`[requester.role, requester.org].exists(x, x == record.author)`, func(r Request) bool {
		return r.Requester.Role == r.Author || r.Requester.Org == r.Author
	}},
	{`record.author + requester.org == requester.id`, func(r Request) bool { return r.Author+r.Requester.Org == r.Requester.ID }},
}

// FuzzEval runs a fixed set of compiled conditions on fuzzed request fields
// and times. Conditions are checked once at grant time; at read time the
// requester's fields, the record's author and the block time are whatever
// they are, so Eval must never panic, must answer deterministically, must
// deny (false) with every error, must refuse a field over MaxFieldBytes, and
// otherwise must agree with the Go oracle: a condition the cost estimate
// admitted must never hit the runtime cost limit. The same request then goes
// through Evaluate, whose decision must be explained by Covers and the
// conditions.
func FuzzEval(f *testing.F) {
	f.Add("mc1abcdef", "physician", "org1", "laboratory", "a1", "treatment", "read", t0)                                              // allowed by most
	f.Add("m1", "nurse", "orgff", "genetic", "mc1abc", "treatment", "read", t0)                                                       // sensitive category
	f.Add("", "", "", "", "", "", "", int64(0))                                                                                       // empty everything, epoch
	f.Add(strings.Repeat("a", MaxFieldBytes), "physician", "", "imaging", "aaaa", "research", "write", t0)                            // a field exactly at the limit
	f.Add(strings.Repeat("a", MaxFieldBytes+1), "physician", "", "imaging", "aaaa", "research", "read", t0)                           // one byte over the limit
	f.Add("mc1"+strings.Repeat("f", 253), strings.Repeat("é", 128), "x", "x", strings.Repeat("f", 256), "", "read", t0)               // worst-case contains/matches
	f.Add("\xff\xfe", "\x00", "org\xc3", "laboratory", "\xed\xa0\x80", "treatment", "read", t0)                                       // invalid UTF-8 and NUL
	f.Add("m1", "physician", "org1", "laboratory", "a1", "treatment", "read", int64(-1<<63))                                          // min int64 time (year 1677)
	f.Add("m1", "physician", "org1", "laboratory", "a1", "treatment", "read", int64(1<<63-1))                                         // max int64 time (year 2262)
	f.Add("m1", "physician", "org1", "laboratory", "a1", "treatment", "read", time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()) // exactly the boundary

	progs := make([]*Program, len(evalCases))
	var consents []Consent
	for i, c := range evalCases {
		p, err := Compile(c.src)
		if err != nil {
			f.Fatalf("compile %q: %v", c.src, err)
		}
		progs[i] = p
		consents = append(consents, Consent{ID: fmt.Sprintf("c%02d", i), Patient: "p1", Grantee: "m1", Categories: []string{"all", "genetic"},
			Purposes: Purposes, Actions: Actions, Start: 0, Condition: c.src})
	}
	compile := func(c Consent) (*Program, error) {
		for i, e := range evalCases {
			if e.src == c.Condition {
				return progs[i], nil
			}
		}
		return nil, fmt.Errorf("no program for %q", c.Condition)
	}

	f.Fuzz(func(t *testing.T, id, role, org, category, author, purpose, action string, at int64) {
		req := Request{Requester: Requester{ID: id, Role: role, Org: org}, Action: action, Purpose: purpose,
			Category: category, Author: author, Time: at}
		long := false
		for _, s := range []string{id, role, org, category, author, purpose} {
			long = long || len(s) > MaxFieldBytes
		}
		results := make([]bool, len(progs))
		for i, p := range progs {
			ok, err := p.Eval(req)
			ok2, err2 := p.Eval(req)
			if ok != ok2 || fmt.Sprint(err) != fmt.Sprint(err2) {
				t.Fatalf("%q: nondeterministic: %v %v / %v %v", evalCases[i].src, ok, err, ok2, err2)
			}
			if err != nil && ok {
				t.Fatalf("%q: true with error %v", evalCases[i].src, err)
			}
			if long {
				if err == nil {
					t.Fatalf("%q: a field over %d bytes was evaluated", evalCases[i].src, MaxFieldBytes)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%q: error on fields within the limits: %v", evalCases[i].src, err)
			}
			if want := evalCases[i].oracle(req); ok != want {
				t.Fatalf("%q: %v, oracle says %v", evalCases[i].src, ok, want)
			}
			results[i] = ok
		}

		// Evaluate over all of them: the first covering consent whose
		// condition holds must win; when none does, nothing is allowed.
		d, err := Evaluate(consents, req, compile)
		if err != nil {
			t.Fatalf("Evaluate: %v", err)
		}
		want := ""
		for i, c := range consents {
			if Covers(c, req) == nil && !long && results[i] {
				want = c.ID
				break
			}
		}
		if d.Allowed != (want != "") || d.ConsentID != want {
			t.Fatalf("Evaluate: %+v, want consent %q", d, want)
		}
		if !d.Allowed && d.Reason == "" {
			t.Fatal("a refusal without a reason")
		}
		for _, s := range []string{id, role, org, author} {
			// Reasons are built from lower-case words, digits, IDs and
			// `"():.-`; text with anything else in it came from the request.
			foreign := strings.IndexFunc(s, func(r rune) bool { return !strings.ContainsRune(`abcdefghijklmnopqrstuvwxyz0123456789 "():.-`, r) }) >= 0
			if len(s) >= 4 && foreign && strings.Contains(d.Reason, s) {
				t.Fatalf("reason %q quotes request text %q", d.Reason, s)
			}
		}
	})
}
