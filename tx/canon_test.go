package tx

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"strings"
	"testing"
)

func hex64(c byte) string { return strings.Repeat(string(c), 64) }

func recordPut(patient string) RecordPut {
	return RecordPut{Patient: patient, Category: "labs", ContentType: "application/fhir+json", Size: 2048, Epoch: 3,
		Ciphertext: hex64('a'), Commitment: hex64('b'), EpochEnv: hex64('c'), SelfEnv: hex64('d')}
}

func hotRequest(t testing.TB) []byte {
	return encode(t, signed(t, testKey(t, "reader"), TypeAccess, 9, Access{Record: "r" + hex64('e')[:32], Purpose: "treatment"}))
}

// hotTxs are canonical transactions of every kind decodeCanonical reads.
func hotTxs(t testing.TB) map[string][]byte {
	author := testKey(t, "admin")
	access := hotRequest(t)
	return map[string][]byte{
		"record.put":         encode(t, signed(t, author, TypeRecordPut, 1, recordPut("mc1"+hex64('f')[:40]))),
		"record.batch":       encode(t, signed(t, author, TypeRecordBatch, 2, RecordBatch{Records: []RecordPut{recordPut("p1"), recordPut("p2"), recordPut("p3")}})),
		"record.batch empty": encode(t, signed(t, author, TypeRecordBatch, 3, RecordBatch{Records: []RecordPut{}})),
		"access":             access,
		"access.batch":       encode(t, signed(t, author, TypeAccessBatch, 4, AccessBatch{Requests: [][]byte{access, access[:10], {}}})),
		"negative size":      encode(t, signed(t, author, TypeRecordPut, 5, RecordPut{Size: -1})),
		"max nonce":          encode(t, signed(t, author, TypeRecordPut, ^uint64(0), RecordPut{})),
	}
}

// TestCanonicalFastPath checks that canonical transactions of the hot kinds
// take the one-pass reader, and that it yields exactly what the strict
// decoder does.
func TestCanonicalFastPath(t *testing.T) {
	for name, raw := range hotTxs(t) {
		t.Run(name, func(t *testing.T) {
			ft, fb, ok := decodeCanonical(raw)
			if !ok {
				t.Fatalf("canonical %s not read by the fast path", name)
			}
			st, sb, err := decodeStrict(raw)
			if err != nil {
				t.Fatalf("strict decoder refuses it: %v", err)
			}
			if !reflect.DeepEqual(ft, st) || !reflect.DeepEqual(fb, sb) {
				t.Fatalf("fast path disagrees:\nfast   %+v %+v\nstrict %+v %+v", ft, fb, st, sb)
			}
		})
	}
}

// TestCanonicalStepsAside checks that every near miss of the canonical form
// leaves the fast path, so that Decode judges it strictly.
func TestCanonicalStepsAside(t *testing.T) {
	raw := hotTxs(t)["record.batch"]
	access := hotTxs(t)["access.batch"]
	edits := []struct {
		name     string
		in       []byte
		old, new string
	}{
		{"space after colon", raw, `"nonce":2`, `"nonce": 2`},
		{"leading zero", raw, `"nonce":2`, `"nonce":02`},
		{"plus sign", raw, `"size":2048`, `"size":+2048`},
		{"float", raw, `"size":2048`, `"size":2048.0`},
		{"exponent", raw, `"size":2048`, `"size":2e3`},
		{"minus zero", raw, `"size":2048`, `"size":-0`},
		{"negative epoch", raw, `"epoch":3`, `"epoch":-3`},
		{"escaped letter", raw, `"labs"`, `"l\u0061bs"`},
		{"raw html", raw, `"labs"`, `"l&bs"`},
		{"field order", raw, `"category":"labs","content_type":"application/fhir+json"`, `"content_type":"application/fhir+json","category":"labs"`},
		{"unknown field", raw, `"self_env"`, `"memo":"x","self_env"`},
		{"null records", raw, `"records":[`, `"records":null,"x":[`},
		{"trailing comma", raw, `}]}`, `},]}`},
		{"case folded", raw, `"patient"`, `"Patient"`},
		{"base64 newline", access, `"requests":["`, `"requests":["\n`},
		{"base64 unpadded", access, `=="`, `"`},
	}
	for _, e := range edits {
		t.Run(e.name, func(t *testing.T) {
			in := bytes.Replace(e.in, []byte(e.old), []byte(e.new), 1)
			if bytes.Equal(in, e.in) {
				t.Fatalf("edit %q did not apply", e.old)
			}
			if _, _, ok := decodeCanonical(in); ok {
				t.Fatalf("fast path accepted %s", e.name)
			}
			if _, _, err := Decode(in); err == nil {
				t.Fatalf("Decode accepted %s", e.name)
			}
		})
	}
	// The same request bytes with a padding bit set: base64 decodes it, but
	// json.Marshal never writes it.
	enc := base64.StdEncoding.EncodeToString(hotRequest(t)[:10])
	bits := enc[:len(enc)-3] + string(enc[len(enc)-3]+1) + "=="
	padded := bytes.Replace(access, []byte(enc), []byte(bits), 1)
	if bytes.Equal(padded, access) {
		t.Fatal("padding edit did not apply")
	}
	if _, _, ok := decodeCanonical(padded); ok {
		t.Error("fast path read base64 with padding bits set")
	}
	if _, _, err := Decode(padded); err == nil {
		t.Error("Decode accepted base64 with padding bits set")
	}
	// Canonical, but not ASCII: the strict decoder reads it.
	nonASCII := bytes.Replace(raw, []byte(`"labs"`), []byte("\"l\u00e4bs\""), 1)
	if _, _, ok := decodeCanonical(nonASCII); ok {
		t.Error("fast path read a non-ASCII string")
	}
	if x, _, err := Decode(nonASCII); err != nil || x == nil {
		t.Errorf("Decode refused a canonical non-ASCII string: %v", err)
	}
	if _, _, ok := decodeCanonical(append(bytes.Clone(raw), ' ')); ok {
		t.Error("fast path accepted trailing whitespace")
	}
	if _, _, ok := decodeCanonical(raw[:len(raw)-1]); ok {
		t.Error("fast path accepted a truncated transaction")
	}
}

// FuzzCanonicalAgrees checks that the fast path never disagrees with the
// strict decoder: whatever it reads, the strict decoder reads to the same
// values.
func FuzzCanonicalAgrees(f *testing.F) {
	for _, raw := range hotTxs(f) {
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		ft, fb, ok := decodeCanonical(raw)
		if !ok {
			return
		}
		st, sb, err := decodeStrict(raw)
		if err != nil {
			// Only the checks both paths share may refuse it.
			if ferr := ft.checkDecoded(len(raw)); ferr == nil || ferr.Error() != err.Error() {
				t.Fatalf("fast path read what the strict decoder refuses (%v); shared checks say %v", err, ferr)
			}
			return
		}
		if !reflect.DeepEqual(ft, st) || !reflect.DeepEqual(fb, sb) {
			t.Fatalf("fast path disagrees:\nfast   %+v %+v\nstrict %+v %+v", ft, fb, st, sb)
		}
	})
}
