package tx

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// manyIDs returns n distinct record IDs of the form the ledger gives.
func manyIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("r%032x", i+1)
	}
	return ids
}

// TestAccessManyCheck: an access.many names 1 to MaxAccessRecords records,
// each once; anything else is malformed.
func TestAccessManyCheck(t *testing.T) {
	dup := manyIDs(5)
	dup[4] = dup[1]
	tests := []struct {
		name    string
		records []string
		ok      bool
	}{
		{"one record", manyIDs(1), true},
		{"two records", manyIDs(2), true},
		{"the limit", manyIDs(MaxAccessRecords), true},
		{"nil", nil, false},
		{"empty", []string{}, false},
		{"one over the limit", manyIDs(MaxAccessRecords + 1), false},
		{"far over the limit", manyIDs(4 * MaxAccessRecords), false},
		{"duplicate", dup, false},
		{"duplicate adjacent", []string{"r1", "r1"}, false},
		{"duplicate at the ends", append(manyIDs(MaxAccessRecords-1), manyIDs(1)...), false},
		{"empty ids twice", []string{"", ""}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &AccessMany{Records: tc.records, Purpose: "treatment"}
			err := b.Check()
			if tc.ok {
				if err != nil {
					t.Fatalf("Check of %d records: %v, want nil", len(tc.records), err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check of %d records accepted it", len(tc.records))
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

// TestAccessManyRoundTrip: an access.many encodes canonically and decodes
// back to the same transaction and body.
func TestAccessManyRoundTrip(t *testing.T) {
	reader := testKey(t, "reader")
	tests := []struct {
		name string
		body AccessMany
	}{
		{"one", AccessMany{Records: manyIDs(1), Purpose: "treatment"}},
		{"several", AccessMany{Records: []string{"r" + hex64('b')[:32], "r" + hex64('a')[:32], "r" + hex64('c')[:32]}, Purpose: "research"}},
		{"the limit", AccessMany{Records: manyIDs(MaxAccessRecords), Purpose: "payment"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := signed(t, reader, TypeAccessMany, uint64(1e18)+uint64(i), tc.body)
			raw := encode(t, x)
			got, body, err := Decode(raw)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			b, ok := body.(*AccessMany)
			if !ok {
				t.Fatalf("Decode body is %T, want *AccessMany", body)
			}
			if !reflect.DeepEqual(*b, tc.body) {
				t.Fatalf("decoded body %+v, want %+v", *b, tc.body)
			}
			if got.Type != TypeAccessMany || got.Signer != reader.ID() || got.Nonce != x.Nonce || string(got.Body) != string(x.Body) || string(got.Sig) != string(x.Sig) {
				t.Fatalf("decoded transaction %+v differs from the encoded one", got)
			}
			if err := got.Verify(testChain, reader.Public().Sign); err != nil {
				t.Fatalf("decoded transaction does not verify: %v", err)
			}
			again, err := got.Encode()
			if err != nil || string(again) != string(raw) {
				t.Fatalf("re-encoding differs (%v)", err)
			}
			if err := b.Check(); err != nil {
				t.Fatalf("Check of the decoded body: %v", err)
			}
		})
	}
}

// TestAccessManyNonCanonical: every other spelling of an access.many is
// refused by Decode, so one request has one hash (the ledger's replay key).
func TestAccessManyNonCanonical(t *testing.T) {
	reader := testKey(t, "reader")
	x := signed(t, reader, TypeAccessMany, 42, AccessMany{Records: []string{"r" + hex64('a')[:32], "r" + hex64('b')[:32]}, Purpose: "treatment"})
	f := fieldsOf(t, x)
	body := string(x.Body)
	rec := `"r` + hex64('a')[:32] + `"`
	edits := []struct {
		name string
		raw  string
	}{
		{"body field order", f.with("body", `{"purpose":"treatment","records":[`+rec+`,"r`+hex64('b')[:32]+`"]}`).String()},
		{"body whitespace", f.with("body", strings.Replace(body, `"records":`, `"records": `, 1)).String()},
		{"body space in list", f.with("body", strings.Replace(body, `",`, `", `, 1)).String()},
		{"body unknown field", f.with("body", strings.TrimSuffix(body, "}")+`,"memo":"x"}`).String()},
		{"body escaped letter", f.with("body", strings.Replace(body, `"treatment"`, `"tre\u0061tment"`, 1)).String()},
		{"body records a string", f.with("body", `{"records":`+rec+`,"purpose":"treatment"}`).String()},
		{"body single access", f.with("body", `{"record":`+rec+`,"purpose":"treatment"}`).String()},
		{"body trailing comma", f.with("body", strings.Replace(body, `"],`, `",],`, 1)).String()},
		{"envelope field order", fields{f[1], f[0], f[2], f[3], f[4]}.String()},
		{"envelope whitespace", strings.Replace(string(encode(t, x)), `"type":`, `"type": `, 1)},
		{"missing sig", f.without("sig").String()},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			if e.raw == string(encode(t, x)) {
				t.Fatal("edit did not change the encoding")
			}
			if _, _, err := Decode([]byte(e.raw)); err == nil {
				t.Fatalf("Decode accepted %s", e.name)
			} else if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error %v is not ErrMalformed", err)
			}
		})
	}
}
