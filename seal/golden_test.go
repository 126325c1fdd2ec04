package seal

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"testing/cryptotest"
)

var update = flag.Bool("update", false, "regenerate testdata/golden.json")

// TestGolden pins the wire formats: vectors written by an earlier build must
// still open, and the deterministic derivations (epoch keys, commitments)
// must give the same bytes. Sealing is randomized, so the vectors were
// produced once under testing/cryptotest.SetGlobalRandom; the test checks the
// opening direction only, which is what compatibility needs.
func TestGolden(t *testing.T) {
	if *update {
		writeGolden(t)
	}
	g := loadGolden(t)
	patient := testIdentity(t, g.Patient)
	author := testIdentity(t, g.Author)
	grantee := testIdentity(t, g.Grantee)

	for _, ek := range g.EpochKeys {
		k, err := EpochKey(patient, ek.Category, ek.Epoch)
		if err != nil {
			t.Fatalf("EpochKey(%q, %d): %v", ek.Category, ek.Epoch, err)
		}
		if got := sha256.Sum256(k.PublicKey().Bytes()); !bytes.Equal(got[:], ek.PublicSHA256) {
			t.Errorf("EpochKey(%q, %d): public key hash %x, want %x", ek.Category, ek.Epoch, got, []byte(ek.PublicSHA256))
		}
	}
	for _, c := range g.Commits {
		got, err := Commit(c.Plaintext, c.DEK)
		if err != nil || !bytes.Equal(got[:], c.Commitment) {
			t.Errorf("Commit(%q) = %x, %v; want %x", c.Plaintext, got, err, []byte(c.Commitment))
		}
	}
	for _, r := range g.Records {
		t.Run(r.Name, func(t *testing.T) {
			pt, err := Open(r.Ciphertext, r.DEK, r.AAD)
			if err != nil || !bytes.Equal(pt, r.Plaintext) {
				t.Fatalf("Open = %q, %v; want %q", pt, err, r.Plaintext)
			}
			if err := CheckCommitment(r.Plaintext, r.DEK, [32]byte(r.Commitment)); err != nil {
				t.Errorf("CheckCommitment: %v", err)
			}
			if h := sha256.Sum256(r.Ciphertext); !bytes.Equal(h[:], r.CiphertextHash) {
				t.Errorf("ciphertext hash %x, want %x", h, []byte(r.CiphertextHash))
			}
			ek, err := EpochKey(patient, r.Category, r.Epoch)
			if err != nil {
				t.Fatal(err)
			}
			dek, err := OpenEpochEnvelope(ek, r.EpochEnvelope, r.AAD)
			if err != nil || !bytes.Equal(dek, r.DEK) {
				t.Errorf("OpenEpochEnvelope = %x, %v; want the DEK", dek, err)
			}
			dek, err = UnwrapForSelf(author, r.SelfEnvelope, r.AAD)
			if err != nil || !bytes.Equal(dek, r.DEK) {
				t.Errorf("UnwrapForSelf = %x, %v; want the DEK", dek, err)
			}
		})
	}
	for _, gr := range g.Grants {
		want, err := EpochKey(patient, gr.Category, gr.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		got, err := UnwrapEpochKey(grantee.Box, gr.Envelope, gr.Ctx)
		if err != nil {
			t.Fatalf("UnwrapEpochKey(%q, %d): %v", gr.Category, gr.Epoch, err)
		}
		if !bytes.Equal(got.PublicKey().Bytes(), want.PublicKey().Bytes()) {
			t.Errorf("UnwrapEpochKey(%q, %d): wrong key", gr.Category, gr.Epoch)
		}
	}
}

func writeGolden(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 20240601)
	g := golden{
		Comment: "seal v1 vectors; regenerate with: go test ./seal -run TestGolden -update",
		Patient: "patient", Author: "author", Grantee: "grantee",
	}
	patient := testIdentity(t, g.Patient)
	author := testIdentity(t, g.Author)
	grantee := testIdentity(t, g.Grantee)

	for _, ek := range []struct {
		cat   string
		epoch uint64
	}{{"lab", 0}, {"lab", 1}, {"imaging", 0}, {"mental-health", 1 << 40}} {
		k, err := EpochKey(patient, ek.cat, ek.epoch)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(k.PublicKey().Bytes())
		g.EpochKeys = append(g.EpochKeys, goldenEpochKey{ek.cat, ek.epoch, h[:]})
	}
	for i, pt := range []string{"", "HbA1c 6.1%", "positive", "negative"} {
		dek := bytes.Repeat([]byte{byte(i + 1)}, DEKSize)
		c, err := Commit([]byte(pt), dek)
		if err != nil {
			t.Fatal(err)
		}
		g.Commits = append(g.Commits, goldenCommitKAT{dek, []byte(pt), c[:]})
	}
	for _, r := range []struct {
		name, cat string
		epoch     uint64
		aad, pt   string
	}{
		{"empty", "lab", 0, "rec-0|patient|lab", ""},
		{"small", "lab", 1, "rec-1|patient|lab", "HbA1c 6.1%"},
		{"no-aad", "imaging", 0, "", "chest x-ray: no acute findings"},
		{"multi-block", "mental-health", 1 << 40, "rec-3|patient|mental-health", string(bytes.Repeat([]byte("session notes. "), 20))},
	} {
		ek, err := EpochKey(patient, r.cat, r.epoch)
		if err != nil {
			t.Fatal(err)
		}
		s, err := SealRecord([]byte(r.pt), []byte(r.aad), ek.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		self, err := WrapForSelf(author, s.DEK, []byte(r.aad))
		if err != nil {
			t.Fatal(err)
		}
		g.Records = append(g.Records, goldenRecord{
			Name: r.name, Category: r.cat, Epoch: r.epoch, AAD: []byte(r.aad), Plaintext: []byte(r.pt),
			DEK: s.DEK, Ciphertext: s.Ciphertext, Commitment: s.Commitment[:], CiphertextHash: s.CiphertextHash[:],
			EpochEnvelope: s.EpochEnvelope, SelfEnvelope: self,
		})
	}
	for _, gr := range []struct {
		cat   string
		epoch uint64
	}{{"lab", 1}, {"imaging", 0}} {
		ek, err := EpochKey(patient, gr.cat, gr.epoch)
		if err != nil {
			t.Fatal(err)
		}
		ctx := []byte("patient|" + gr.cat + "|" + string(rune('0'+gr.epoch)) + "|grantee")
		env, err := WrapEpochKey(grantee.Box.PublicKey(), ek, ctx)
		if err != nil {
			t.Fatal(err)
		}
		g.Grants = append(g.Grants, goldenGrant{gr.cat, gr.epoch, ctx, env})
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenPath, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", goldenPath)
}
