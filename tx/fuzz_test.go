package tx

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/medchain/medchain/ident"
)

// FuzzDecode feeds Decode arbitrary bytes. It must never panic, must fail
// only with ErrMalformed or ErrTooLarge, and whatever it accepts must be
// canonical: re-encoding gives the input back byte for byte, and the body
// re-encodes to the bytes it was decoded from.
func FuzzDecode(f *testing.F) {
	seed := func(name string) { f.Add(readVector(f, name)) }
	seed("valid-org-add")                                                                                                                                                                                                                                          // canonical org.add, with \u0026 in the name: must round-trip
	seed("valid-member-add")                                                                                                                                                                                                                                       // canonical member.add
	seed("valid-patient-add")                                                                                                                                                                                                                                      // canonical patient.add, self-signed
	seed("unknown-field")                                                                                                                                                                                                                                          // extra top-level field "memo"
	seed("unknown-type")                                                                                                                                                                                                                                           // signed, but type "org.remove" has no body type
	seed("missing-sig")                                                                                                                                                                                                                                            // sig omitted entirely
	seed("empty-sig")                                                                                                                                                                                                                                              // sig present but empty
	seed("short-sig")                                                                                                                                                                                                                                              // wrong signature length: 63 bytes
	seed("long-sig")                                                                                                                                                                                                                                               // wrong signature length: 65 bytes
	seed("sig-not-base64")                                                                                                                                                                                                                                         // sig is not base64
	seed("sig-padding-bits")                                                                                                                                                                                                                                       // same signature bytes, non-canonical base64 padding bits
	seed("space-after-colon")                                                                                                                                                                                                                                      // insignificant whitespace
	seed("indented")                                                                                                                                                                                                                                               // pretty-printed
	seed("trailing-newline")                                                                                                                                                                                                                                       // whitespace after the value
	seed("field-order")                                                                                                                                                                                                                                            // signer before type
	seed("duplicate-field")                                                                                                                                                                                                                                        // nonce given twice
	seed("case-folded-field")                                                                                                                                                                                                                                      // "Type": encoding/json matches names case-insensitively
	seed("escaped-ascii")                                                                                                                                                                                                                                          // \u006d where a plain "m" is canonical
	seed("unescaped-html")                                                                                                                                                                                                                                         // literal & where \u0026 is canonical
	seed("trailing-garbage")                                                                                                                                                                                                                                       // bytes after the object
	seed("trailing-value")                                                                                                                                                                                                                                         // two transactions back to back
	seed("trailing-brace")                                                                                                                                                                                                                                         // a stray closing brace, which Decoder.More does not flag
	seed("signer-short")                                                                                                                                                                                                                                           // signer not 40 hex digits
	seed("signer-uppercase")                                                                                                                                                                                                                                       // signer hex in upper case
	seed("signer-wrong-prefix")                                                                                                                                                                                                                                    // signer "mc2..."
	seed("signer-empty")                                                                                                                                                                                                                                           // signer ""
	seed("nonce-negative")                                                                                                                                                                                                                                         // nonce -1
	seed("nonce-string")                                                                                                                                                                                                                                           // nonce as a string
	seed("nonce-float")                                                                                                                                                                                                                                            // nonce 7.0
	seed("nonce-exponent")                                                                                                                                                                                                                                         // nonce 7e0
	seed("nonce-leading-zero")                                                                                                                                                                                                                                     // nonce 07: not JSON
	seed("nonce-overflow")                                                                                                                                                                                                                                         // nonce 2^64
	seed("body-unknown-field")                                                                                                                                                                                                                                     // body has a field its type lacks
	seed("body-field-order")                                                                                                                                                                                                                                       // body fields swapped
	seed("body-whitespace")                                                                                                                                                                                                                                        // whitespace inside the body
	seed("body-escaped")                                                                                                                                                                                                                                           // \u004d inside the body
	seed("body-invalid-utf8")                                                                                                                                                                                                                                      // a 0xff byte inside a body string
	seed("body-null")                                                                                                                                                                                                                                              // body null
	seed("body-missing")                                                                                                                                                                                                                                           // no body field
	seed("body-string")                                                                                                                                                                                                                                            // body is a string, not an object
	seed("body-of-other-type")                                                                                                                                                                                                                                     // member.add carrying an org.add body
	f.Add([]byte{})                                                                                                                                                                                                                                                // empty input
	f.Add([]byte("null"))                                                                                                                                                                                                                                          // JSON null: unmarshals to a zero Tx, so only the signer check stops it
	f.Add([]byte(`{"type":"access.many","signer":"mc10000000000000000000000000000000000000000","nonce":1,"body":{"records":["r0","r1"],"purpose":"treatment"},"sig":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`)) // an access.many: its body decodes strictly
	f.Add([]byte(`{"type":"org.add","signer":"mc10000000000000000000000000000000000000000","nonce":0,"body":{"public":"","name":""},"sig":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="}`))                           // smallest canonical org.add: zero fields, zero signature

	pub := testKey(f, "admin").Public().Sign
	f.Fuzz(func(t *testing.T, raw []byte) {
		x, body, err := Decode(raw)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decode error is neither ErrMalformed nor ErrTooLarge: %v", err)
			}
			if x != nil || body != nil {
				t.Fatalf("Decode returned values with error %v", err)
			}
			return
		}
		again, err := x.Encode()
		if err != nil {
			t.Fatalf("Encode of a decoded transaction: %v", err)
		}
		if !bytes.Equal(again, raw) {
			t.Fatalf("Decode accepted a non-canonical encoding:\n in: %q\nout: %q", raw, again)
		}
		cb, err := json.Marshal(body)
		if err != nil || !bytes.Equal(cb, x.Body) {
			t.Fatalf("body re-encodes to %q, decoded from %q (err %v)", cb, x.Body, err)
		}
		if !ident.ValidID(x.Signer) || len(x.Sig) != 64 {
			t.Fatalf("accepted signer %q with %d-byte signature", x.Signer, len(x.Sig))
		}
		// Verify must not panic on anything Decode accepts.
		_ = x.Verify(testChain, pub)
	})
}
