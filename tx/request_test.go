package tx

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseRequestAuth(t *testing.T) {
	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	const actor, when = "mc1actor", int64(1_764_000_000_123_456_789)
	h := SignRequest("chain", actor, key, "POST", "/v1/records?x=1", when, []byte("body"))
	gotActor, gotWhen, sig, err := ParseRequestAuth(h)
	if err != nil {
		t.Fatalf("ParseRequestAuth(SignRequest(…)) = %v", err)
	}
	if gotActor != actor || gotWhen != when {
		t.Fatalf("parsed %q, %d; want %q, %d", gotActor, gotWhen, actor, when)
	}
	if !ed25519.Verify(pub, RequestSignBytes("chain", "POST", "/v1/records?x=1", when, []byte("body")), sig) {
		t.Fatal("the parsed signature does not verify")
	}
	if ed25519.Verify(pub, RequestSignBytes("chain", "POST", "/v1/records?x=2", when, []byte("body")), sig) {
		t.Fatal("the signature verifies for another request")
	}

	sig64 := base64.RawURLEncoding.EncodeToString(sig)
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"other scheme", "Bearer " + actor + ":1:" + sig64},
		{"scheme in lower case", "medchain " + actor + ":1:" + sig64},
		{"no space", RequestScheme + actor + ":1:" + sig64},
		{"two parts", RequestScheme + " " + actor + ":" + sig64},
		{"four parts", RequestScheme + " " + actor + ":1:2:" + sig64},
		{"time not a number", RequestScheme + " " + actor + ":soon:" + sig64},
		{"time overflows", RequestScheme + " " + actor + ":99999999999999999999:" + sig64},
		{"signature short", RequestScheme + " " + actor + ":1:" + sig64[:40]},
		{"signature long", RequestScheme + " " + actor + ":1:" + sig64 + "AAAA"},
		{"signature padded", RequestScheme + " " + actor + ":1:" + sig64 + "=="},
		{"signature std base64", RequestScheme + " " + actor + ":1:" + strings.Repeat("+", len(sig64))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, err := ParseRequestAuth(tc.in); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseRequestAuth = %v, want ErrMalformed", err)
			}
		})
	}
}

// FuzzParseRequestAuth: no header panics the parser, every refusal is
// ErrMalformed, and what it accepts is an actor, a time and a 64-byte
// signature that parse again, unchanged, from the header SignRequest would
// have written for them.
func FuzzParseRequestAuth(f *testing.F) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(SignRequest("chain", "mc1actor", key, "GET", "/v1/records", 1, nil))
	f.Add(RequestScheme + " a:-1:" + strings.Repeat("A", 86))
	f.Add(RequestScheme + " ::")
	f.Add(RequestScheme + " a:+1:" + strings.Repeat("_", 86))
	f.Fuzz(func(t *testing.T, h string) {
		actor, when, sig, err := ParseRequestAuth(h)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if len(sig) != ed25519.SignatureSize || strings.Contains(actor, ":") {
			t.Fatalf("accepted a %d-byte signature, or an actor with a colon", len(sig))
		}
		again := fmt.Sprintf("%s %s:%d:%s", RequestScheme, actor, when, base64.RawURLEncoding.EncodeToString(sig))
		a2, w2, s2, err := ParseRequestAuth(again)
		if err != nil || a2 != actor || w2 != when || !bytes.Equal(s2, sig) {
			t.Fatalf("the canonical header of what parsed does not parse back: %v", err)
		}
	})
}
