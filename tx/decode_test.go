package tx

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "regenerate testdata/decode/*.json")

// decodeTests is the specification of Decode: one golden file per case in
// testdata/decode, named for the one way it differs from a canonical
// transaction. wantErr nil means the vector must decode.
var decodeTests = []struct {
	name    string
	wantErr error
	wantMsg string // a substring of the error, naming the reason
}{
	{"valid-org-add", nil, ""},
	{"valid-member-add", nil, ""},
	{"valid-patient-add", nil, ""},
	{"max-size", nil, ""}, // exactly MaxSize bytes

	{"oversized", ErrTooLarge, "65537 bytes"}, // canonical, one byte over MaxSize
	{"empty", ErrMalformed, "EOF"},
	{"not-json", ErrMalformed, "invalid character"},
	{"array", ErrMalformed, "cannot unmarshal array"},
	{"unknown-field", ErrMalformed, `unknown field "memo"`},
	{"unknown-type", ErrMalformed, `unknown type "org.remove"`},
	{"missing-sig", ErrMalformed, "signature missing"},
	{"empty-sig", ErrMalformed, "signature missing"},
	{"short-sig", ErrMalformed, "signature missing or not 64 bytes"},
	{"long-sig", ErrMalformed, "signature missing or not 64 bytes"},
	{"sig-not-base64", ErrMalformed, "illegal base64"},
	{"sig-padding-bits", ErrMalformed, "not in canonical encoding"},
	{"space-after-colon", ErrMalformed, "not in canonical encoding"},
	{"indented", ErrMalformed, "not in canonical encoding"},
	{"trailing-newline", ErrMalformed, "not in canonical encoding"},
	{"field-order", ErrMalformed, "not in canonical encoding"},
	{"duplicate-field", ErrMalformed, "not in canonical encoding"},
	{"case-folded-field", ErrMalformed, "not in canonical encoding"},
	{"escaped-ascii", ErrMalformed, "not in canonical encoding"},
	{"unescaped-html", ErrMalformed, "not in canonical encoding"},
	{"trailing-garbage", ErrMalformed, "trailing data"},
	{"trailing-value", ErrMalformed, "trailing data"},
	{"trailing-brace", ErrMalformed, "not in canonical encoding"},
	{"signer-short", ErrMalformed, "is not an actor ID"},
	{"signer-uppercase", ErrMalformed, "is not an actor ID"},
	{"signer-wrong-prefix", ErrMalformed, "is not an actor ID"},
	{"signer-empty", ErrMalformed, "is not an actor ID"},
	{"nonce-negative", ErrMalformed, "cannot unmarshal number -1"},
	{"nonce-string", ErrMalformed, "cannot unmarshal string"},
	{"nonce-float", ErrMalformed, "cannot unmarshal number 7.0"},
	{"nonce-exponent", ErrMalformed, "cannot unmarshal number 7e0"},
	{"nonce-leading-zero", ErrMalformed, "invalid character"},
	{"nonce-overflow", ErrMalformed, "cannot unmarshal number 18446744073709551616"},
	{"body-unknown-field", ErrMalformed, `org.add body: json: unknown field "extra"`},
	{"body-field-order", ErrMalformed, "org.add body not in canonical encoding"},
	{"body-whitespace", ErrMalformed, "not in canonical encoding"},
	{"body-escaped", ErrMalformed, "org.add body not in canonical encoding"},
	{"body-invalid-utf8", ErrMalformed, "org.add body not in canonical encoding"},
	{"body-null", ErrMalformed, "org.add body not in canonical encoding"},
	{"body-missing", ErrMalformed, "org.add body: EOF"},
	{"body-string", ErrMalformed, "org.add body: json: cannot unmarshal string"},
	{"body-of-other-type", ErrMalformed, `member.add body: json: unknown field "name"`},
}

// buildVectors derives every vector from three canonical transactions, so
// each differs from a valid one in exactly the way its name says.
func buildVectors(t testing.TB) map[string][]byte {
	admin, org := testKey(t, "admin"), testKey(t, "org")
	orgAdd := signed(t, admin, TypeOrgAdd, 7, orgAddBody(t))
	base := encode(t, orgAdd)
	f := fieldsOf(t, orgAdd)
	s := func(f fields) []byte { return []byte(f.String()) }
	sig := func(b []byte) string { return `"` + base64.StdEncoding.EncodeToString(b) + `"` }
	replace := func(old, new string) []byte {
		if !bytes.Contains(base, []byte(old)) {
			t.Fatalf("base vector lacks %q", old)
		}
		return bytes.Replace(base, []byte(old), []byte(new), 1)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, base, "", "  "); err != nil {
		t.Fatal(err)
	}
	unsigned := *orgAdd
	unsigned.Sig = nil
	unknownType := signed(t, admin, "org.remove", 7, orgAddBody(t))
	// Flip the low padding bits of the last base64 digit: the same 64 bytes
	// decode, but that spelling is not the one Encode writes.
	sigB64 := base64.StdEncoding.EncodeToString(orgAdd.Sig)
	last := strings.IndexByte(sigB64, '=') - 1
	paddingBits := sigB64[:last] + string(sigB64[last]+1) + sigB64[last+1:]
	body := string(orgAdd.Body)
	upperSigner := "mc1" + strings.ToUpper(admin.ID()[3:])

	return map[string][]byte{
		"valid-org-add":     base,
		"valid-member-add":  encode(t, signed(t, org, TypeMemberAdd, 1, &MemberAdd{Public: testKey(t, "member").Public().String(), Role: "physician"})),
		"valid-patient-add": encode(t, signed(t, testKey(t, "patient"), TypePatientAdd, 1, &PatientAdd{Public: testKey(t, "patient").Public().String()})),
		"max-size":          sized(t, MaxSize),

		"oversized":         sized(t, MaxSize+1),
		"empty":             {},
		"not-json":          []byte("org.add by admin"),
		"array":             []byte("[]"),
		"unknown-field":     s(append(f, [2]string{"memo", `"hi"`})),
		"unknown-type":      encode(t, unknownType),
		"missing-sig":       encode(t, &unsigned),
		"empty-sig":         s(f.with("sig", `""`)),
		"short-sig":         s(f.with("sig", sig(orgAdd.Sig[:63]))),
		"long-sig":          s(f.with("sig", sig(append(orgAdd.Sig[:64:64], 0)))),
		"sig-not-base64":    s(f.with("sig", `"!!"`)),
		"sig-padding-bits":  s(f.with("sig", `"`+paddingBits+`"`)),
		"space-after-colon": replace(`"type":`, `"type": `),
		"indented":          indented.Bytes(),
		"trailing-newline":  append(bytes.Clone(base), '\n'),
		"field-order":       s(fields{f[1], f[0], f[2], f[3], f[4]}),
		"duplicate-field":   s(append(fields{{"nonce", "6"}}, f...)),
		"case-folded-field": replace(`"type":`, `"Type":`),
		"escaped-ascii":     replace(`"signer":"mc1`, `"signer":"\u006dc1`),
		"unescaped-html":    replace(`Mercy \u0026 Co`, `Mercy & Co`),
		"trailing-garbage":  append(bytes.Clone(base), "garbage"...),
		"trailing-value":    append(bytes.Clone(base), base...),
		"trailing-brace":    append(bytes.Clone(base), '}'),

		"signer-short":        s(f.with("signer", `"mc1abc"`)),
		"signer-uppercase":    s(f.with("signer", `"`+upperSigner+`"`)),
		"signer-wrong-prefix": s(f.with("signer", `"mc2`+admin.ID()[3:]+`"`)),
		"signer-empty":        s(f.with("signer", `""`)),

		"nonce-negative":     s(f.with("nonce", "-1")),
		"nonce-string":       s(f.with("nonce", `"7"`)),
		"nonce-float":        s(f.with("nonce", "7.0")),
		"nonce-exponent":     s(f.with("nonce", "7e0")),
		"nonce-leading-zero": s(f.with("nonce", "07")),
		"nonce-overflow":     s(f.with("nonce", "18446744073709551616")),

		"body-unknown-field": s(f.with("body", strings.TrimSuffix(body, "}")+`,"extra":1}`)),
		"body-field-order":   s(f.with("body", `{"name":"Mercy \u0026 Co","public":"`+testKey(t, "org").Public().String()+`"}`)),
		"body-whitespace":    s(f.with("body", strings.Replace(body, `"name":`, `"name": `, 1))),
		"body-escaped":       s(f.with("body", strings.Replace(body, `"Mercy`, `"\u004dercy`, 1))),
		"body-invalid-utf8":  s(f.with("body", strings.Replace(body, `Co"`, "Co\xff\"", 1))),
		"body-null":          s(f.with("body", "null")),
		"body-missing":       s(f.without("body")),
		"body-string":        s(f.with("body", `"org"`)),
		"body-of-other-type": s(f.with("type", `"member.add"`)),
	}
}

// TestDecodeVectors checks that the files in testdata/decode are exactly what
// buildVectors makes, so a vector never drifts from the mutation its name
// promises. Run with -update to rewrite them.
func TestDecodeVectors(t *testing.T) {
	vs := buildVectors(t)
	if *update {
		dir := filepath.Join("testdata", "decode")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range vs {
			if err := os.WriteFile(vectorPath(name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(vs) != len(decodeTests) {
		t.Errorf("%d vectors built, %d cases in decodeTests", len(vs), len(decodeTests))
	}
	for _, tc := range decodeTests {
		want, ok := vs[tc.name]
		if !ok {
			t.Errorf("%s: no vector built", tc.name)
			continue
		}
		if got := readVector(t, tc.name); !bytes.Equal(got, want) {
			t.Errorf("%s: file differs from the built vector; regenerate with -update if the format changed on purpose", tc.name)
		}
	}
}

func TestDecode(t *testing.T) {
	for _, tc := range decodeTests {
		t.Run(tc.name, func(t *testing.T) {
			raw := readVector(t, tc.name)
			x, body, err := Decode(raw)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("Decode = %v; want %v containing %q", err, tc.wantErr, tc.wantMsg)
				}
				if x != nil || body != nil {
					t.Errorf("Decode returned a transaction with error %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			again, err := x.Encode()
			if err != nil || !bytes.Equal(again, raw) {
				t.Errorf("Encode after Decode differs from input (err %v)", err)
			}
			if cb, _ := json.Marshal(body); !bytes.Equal(cb, x.Body) {
				t.Errorf("decoded body re-encodes to %s, want %s", cb, x.Body)
			}
			if Hash(raw) != Hash(again) {
				t.Errorf("hash changed across round trip")
			}
		})
	}
}

// TestDecodeBodyTypes checks that each transaction type decodes into its own
// body type, carrying the fields that were signed.
func TestDecodeBodyTypes(t *testing.T) {
	tests := []struct {
		name string
		want any
	}{
		{"valid-org-add", &OrgAdd{Public: testKey(t, "org").Public().String(), Name: "Mercy & Co"}},
		{"valid-member-add", &MemberAdd{Public: testKey(t, "member").Public().String(), Role: "physician"}},
		{"valid-patient-add", &PatientAdd{Public: testKey(t, "patient").Public().String()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, body, err := Decode(readVector(t, tc.name))
			if err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(body)
			wb, _ := json.Marshal(tc.want)
			if string(gb) != string(wb) {
				t.Errorf("body %T %s, want %T %s", body, gb, tc.want, wb)
			}
		})
	}
}

// TestNewEncodeRoundTrip checks that whatever New and Sign build, Decode
// accepts, for every registered type.
func TestNewEncodeRoundTrip(t *testing.T) {
	admin := testKey(t, "admin")
	tests := []struct {
		typ  Type
		body any
	}{
		{TypeOrgAdd, &OrgAdd{Public: "p", Name: "<script>&\u2028"}},
		{TypeMemberAdd, &MemberAdd{Public: "p", Role: "nurse"}},
		{TypePatientAdd, &PatientAdd{Public: "p"}},
	}
	for _, tc := range tests {
		t.Run(string(tc.typ), func(t *testing.T) {
			raw := encode(t, signed(t, admin, tc.typ, 1<<63, tc.body))
			x, _, err := Decode(raw)
			if err != nil {
				t.Fatalf("Decode(%s): %v", raw, err)
			}
			if err := x.Verify(testChain, admin.Public().Sign); err != nil {
				t.Errorf("Verify after Decode: %v", err)
			}
		})
	}
}
