package bench

import (
	"slices"
	"testing"
)

func TestIndexByPatient(t *testing.T) {
	recs := []record{{patient: 2}, {patient: 0}, {patient: 2}, {patient: 3}, {patient: 0}}
	for _, tc := range []struct {
		name     string
		written  []int
		patients int
		want     [][]int32 // by patient
		with     []int
	}{
		{"all, in commit order", []int{4, 0, 1, 2, 3}, 5, [][]int32{{4, 1}, nil, {0, 2}, {3}, nil}, []int{0, 2, 3}},
		{"some written", []int{2, 3}, 4, [][]int32{nil, nil, {2}, {3}}, []int{2, 3}},
		{"none written", nil, 3, [][]int32{nil, nil, nil}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := indexByPatient(recs, tc.written, tc.patients)
			for p, want := range tc.want {
				if got := b.of(p); !slices.Equal(got, want) {
					t.Errorf("of(%d) = %v, want %v", p, got, want)
				}
			}
			if got := b.patients(); !slices.Equal(got, tc.with) {
				t.Errorf("patients() = %v, want %v", got, tc.with)
			}
		})
	}
}
