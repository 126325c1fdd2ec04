package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestWriteJSON(t *testing.T) {
	for _, c := range []struct {
		name       string
		status     int
		v          any
		wantStatus int
		wantKey    string
	}{
		{"answer", http.StatusOK, map[string]any{"record": "r1", "blob": []byte{1, 2, 3}}, http.StatusOK, "record"},
		{"error", http.StatusForbidden, Error{Error: "no consent"}, http.StatusForbidden, "error"},
		{"unencodable", http.StatusOK, map[string]any{"f": func() {}}, http.StatusInternalServerError, "error"},
		{"large", http.StatusOK, map[string]any{"blob": make([]byte, 2*maxPooledAnswer)}, http.StatusOK, "blob"},
		{"small after large", http.StatusOK, map[string]any{"record": "r2"}, http.StatusOK, "record"},
		{"small again", http.StatusOK, map[string]any{"record": "r3"}, http.StatusOK, "record"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			writeJSON(w, c.status, c.v)
			res := w.Result()
			body := w.Body.Bytes()
			if res.StatusCode != c.wantStatus {
				t.Errorf("status %d, want %d", res.StatusCode, c.wantStatus)
			}
			if got := res.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q", got)
			}
			if got := res.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length %q for a %d-byte body", got, len(body))
			}
			var out map[string]any
			if err := json.Unmarshal(body, &out); err != nil || out[c.wantKey] == nil {
				t.Errorf("body %q: want a JSON object with %q (err %v)", body, c.wantKey, err)
			}
			if len(body) == 0 || body[len(body)-1] != '\n' {
				t.Errorf("body %q does not end in a newline", body)
			}
			// Byte for byte what json.Marshal gives, whatever the answers
			// before left in the reused buffers.
			if want, err := json.Marshal(c.v); err == nil && string(body) != string(want)+"\n" {
				t.Errorf("body %.80q, want %.80q", body, want)
			}
		})
	}
}
