package ident

import (
	"errors"
	"strings"
	"testing"
)

func testKey(t testing.TB) Public {
	t.Helper()
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func TestParsePublic(t *testing.T) {
	pub := testKey(t)
	s := pub.String()
	got, err := ParsePublic(s)
	if err != nil {
		t.Fatalf("ParsePublic(String()) = %v", err)
	}
	if got.ID() != pub.ID() || got.String() != s {
		t.Fatalf("round trip changed the key: ID %s → %s", pub.ID(), got.ID())
	}
	body := s[len(publicPrefix):]
	for _, tc := range []struct {
		name, in string
	}{
		{"empty", ""},
		{"no prefix", body},
		{"other prefix", "mcpub2" + body},
		{"truncated", s[:len(s)-4]},
		{"one byte more", s + "AA"},
		{"not base64url", publicPrefix + strings.Repeat("+", len(body))},
		{"padded", s + "=="},
		{"line break inside", s[:100] + "\n" + s[100:]},
		{"carriage return inside", s[:100] + "\r" + s[100:]},
		{"trailing newline", s + "\n"},
		{"box key not a key", publicPrefix + strings.Repeat("_", len(body))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParsePublic(tc.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParsePublic = %v, want ErrMalformed", err)
			}
		})
	}
}

// FuzzParsePublic: no input panics, and what parses is the one string its
// key prints as, so one key has one spelling on the ledger.
func FuzzParsePublic(f *testing.F) {
	s := testKey(f).String()
	f.Add(s)
	f.Add(s[:100] + "\n" + s[100:])
	f.Add(s + "=")
	f.Add(publicPrefix)
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		p, err := ParsePublic(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if p.String() != in {
			t.Fatalf("a %d-byte input parses but prints as another string", len(in))
		}
		if err := p.Check(); err != nil {
			t.Fatalf("parsed key fails Check: %v", err)
		}
	})
}
