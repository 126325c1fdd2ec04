package app

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
)

func sampleRecord() Record {
	const h = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	return Record{ID: "r" + h[:32], Patient: "p" + h[:40], Author: "m" + h[:40], Category: "mental_health",
		ContentType: "application/fhir+json", Size: 3000, Epoch: 2, Ciphertext: h, Commitment: h,
		EpochEnv: h, SelfEnv: h, Height: 12345, Time: 1764000000000000000}
}

// checkRecordJSON holds encodeRecord and decodeRecord to encoding/json.
func checkRecordJSON(t *testing.T, r Record) {
	t.Helper()
	want, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := encodeRecord(&r)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("encodeRecord = %s, %v\n          want %s", got, err, want)
	}
	var fast, slow Record
	if err := decodeRecord(want, &fast); err != nil {
		t.Fatalf("decodeRecord: %v", err)
	}
	if err := json.Unmarshal(want, &slow); err != nil {
		t.Fatal(err)
	}
	if fast != slow {
		t.Fatalf("decodeRecord = %+v\n     json.Unmarshal %+v", fast, slow)
	}
}

func TestRecordJSONIsEncodingJSONs(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Record)
	}{
		{"a record as a batch writes it", func(*Record) {}},
		{"zero", func(r *Record) { *r = Record{} }},
		{"negative numbers", func(r *Record) { r.Size, r.Height, r.Time = -1, -42, math.MinInt64 }},
		{"largest numbers", func(r *Record) {
			r.Size, r.Epoch, r.Height, r.Time = math.MaxInt64, math.MaxUint64, math.MaxInt64, math.MaxInt64
		}},
		{"HTML characters escaped", func(r *Record) { r.ContentType = "text/html; <b>&</b>" }},
		{"quote and backslash", func(r *Record) { r.Category = `a"b\c` }},
		{"control character", func(r *Record) { r.Author = "a\nb\x00" }},
		{"non-ASCII", func(r *Record) { r.ContentType = "text/plain; charset=ütf-8 \u2028" }},
		{"invalid UTF-8", func(r *Record) { r.Patient = "p\xff\xfe" }},
		{"DEL", func(r *Record) { r.SelfEnv = "\x7f" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleRecord()
			tc.edit(&r)
			checkRecordJSON(t, r)
		})
	}
}

// The direct reader takes only the exact bytes the writer makes; anything
// else (still valid JSON, or not) goes to encoding/json, and decodeRecord
// answers as json.Unmarshal does.
func TestDecodeRecordTakesOnlyTheCanonicalLayout(t *testing.T) {
	r := sampleRecord()
	canonical, _ := encodeRecord(&r)
	for _, tc := range []struct {
		name  string
		value string
	}{
		{"whitespace", " " + string(canonical)},
		{"fields reordered", `{"patient":"p","id":"r","author":"a","category":"c","content_type":"t","size":1,"epoch":1,"ciphertext":"x","commitment":"x","epoch_env":"x","self_env":"x","height":1,"time":1}`},
		{"minus zero", string(bytes.Replace(canonical, []byte(`"size":3000`), []byte(`"size":-0`), 1))},
		{"leading zero", string(bytes.Replace(canonical, []byte(`"size":3000`), []byte(`"size":03000`), 1))},
		{"exponent", string(bytes.Replace(canonical, []byte(`"size":3000`), []byte(`"size":3e3`), 1))},
		{"escaped string", string(bytes.Replace(canonical, []byte(`"mental_health"`), []byte(`"mental\u005fhealth"`), 1))},
		{"epoch overflows", string(bytes.Replace(canonical, []byte(`"epoch":2`), []byte(`"epoch":18446744073709551616`), 1))},
		{"negative epoch", string(bytes.Replace(canonical, []byte(`"epoch":2`), []byte(`"epoch":-2`), 1))},
		{"trailing bytes", string(canonical) + "x"},
		{"extra field", string(bytes.Replace(canonical, []byte(`}`), []byte(`,"x":1}`), 1))},
		{"truncated", string(canonical[:len(canonical)-1])},
		{"null", "null"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fast Record
			if parseRecord([]byte(tc.value), &fast) {
				t.Fatalf("the direct reader took %q", tc.value)
			}
			var got, want Record
			gotErr, wantErr := decodeRecord([]byte(tc.value), &got), json.Unmarshal([]byte(tc.value), &want)
			if (gotErr == nil) != (wantErr == nil) || got != want {
				t.Fatalf("decodeRecord = %+v, %v; json.Unmarshal %+v, %v", got, gotErr, want, wantErr)
			}
		})
	}
	var back Record
	if !parseRecord(canonical, &back) || back != r {
		t.Fatalf("the direct reader refused or changed the writer's own bytes")
	}
}

// FuzzRecordJSON: for any field values, encodeRecord writes json.Marshal's
// bytes and decodeRecord reads them back as json.Unmarshal does; and any
// bytes the direct reader takes are the writer's bytes for what it read.
func FuzzRecordJSON(f *testing.F) {
	r := sampleRecord()
	canonical, _ := encodeRecord(&r)
	f.Add(canonical, "mental_health", int64(3000), uint64(2))
	f.Add([]byte(`{"id":"<"}`), "a<b", int64(-1), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, s string, n int64, u uint64) {
		r := sampleRecord()
		r.Category, r.ContentType, r.Size, r.Epoch, r.Time = s, s+"/x", n, u, -n
		checkRecordJSON(t, r)
		var fast Record
		if !parseRecord(data, &fast) {
			return
		}
		var slow Record
		if err := json.Unmarshal(data, &slow); err != nil || !reflect.DeepEqual(fast, slow) {
			t.Fatalf("direct reader: %+v; json.Unmarshal: %+v, %v", fast, slow, err)
		}
		if again, ok := appendRecord(nil, &fast); !ok || !bytes.Equal(again, data) {
			t.Fatalf("the direct reader took bytes the writer would not write: %q", data)
		}
	})
}

// BenchmarkRecordJSON compares a record's state value written and read
// directly with encoding/json.
func BenchmarkRecordJSON(b *testing.B) {
	r := sampleRecord()
	value, _ := json.Marshal(&r)
	b.Run("encode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			_, _ = json.Marshal(&r)
		}
	})
	b.Run("encode/direct", func(b *testing.B) {
		for b.Loop() {
			_, _ = encodeRecord(&r)
		}
	})
	b.Run("decode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			var out Record
			_ = json.Unmarshal(value, &out)
		}
	})
	b.Run("decode/direct", func(b *testing.B) {
		for b.Loop() {
			var out Record
			_ = decodeRecord(value, &out)
		}
	})
}
