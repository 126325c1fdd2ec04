package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// maxRecordFile bounds what record put reads.
const maxRecordFile = 64 << 20

func recordPutCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "author `KEY`: the patient, or a member with write consent")
	patient := fs.String("patient", "", "the `PATIENT` (keyring name or actor ID)")
	category := fs.String("category", "", "record category: "+strings.Join(consent.Categories, ", "))
	ctype := fs.String("type", "", "content `MIME` type (default: from the file name, else application/octet-stream)")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 1, "one FILE"); err != nil {
			return err
		}
		if *patient == "" || *category == "" {
			return usagef("--patient and --category are required")
		}
		if !consent.ValidCategory(*category) {
			return usagef("--category %q: use one of %s", *category, strings.Join(consent.Categories, ", "))
		}
		data, err := readFile(args[0])
		if err != nil {
			return err
		}
		if *ctype == "" {
			*ctype = mime.TypeByExtension(filepath.Ext(args[0]))
			if i := strings.IndexByte(*ctype, ';'); i >= 0 {
				*ctype = (*ctype)[:i]
			}
			if *ctype == "" {
				*ctype = "application/octet-stream"
			}
		}
		pid, err := resolveID(ctx, g, *patient)
		if err != nil {
			return err
		}
		key, err := loadSigner(g, *as)
		if err != nil {
			return err
		}
		id, res, err := client.New(g.node).PutRecord(ctx, key, pid, *category, *ctype, data)
		if err != nil {
			return err
		}
		out := txOutput{ID: id, Tx: res.Hash, Height: res.Height}
		return emit(g, out, out.text())
	}
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxRecordFile {
		return nil, fmt.Errorf("%s is larger than %d MiB; split it", path, maxRecordFile>>20)
	}
	return b, nil
}

func recordGetCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "reader `KEY`")
	purpose := fs.String("purpose", "treatment", "purpose of use: "+strings.Join(consent.Purposes, ", "))
	outFile := fs.String("o", "", "write the contents to `FILE` (default: stdout); with several IDs, a directory to write each record into, as its ID")
	return func(ctx context.Context, g *globals, args []string) error {
		if len(args) == 0 || len(args) > tx.MaxAccessRecords {
			return usagef("want 1 to %d record IDs, got %d", tx.MaxAccessRecords, len(args))
		}
		if len(args) > 1 && *outFile == "" {
			return usagef("several records: say where to write them with -o DIR")
		}
		if !consent.ValidPurpose(*purpose) {
			return usagef("--purpose %q: use one of %s", *purpose, strings.Join(consent.Purposes, ", "))
		}
		key, err := loadSigner(g, *as)
		if err != nil {
			return err
		}
		if len(args) > 1 {
			return getRecords(ctx, g, key, args, *purpose, *outFile)
		}
		pt, rec, err := client.New(g.node).GetRecord(ctx, key, args[0], *purpose)
		if err != nil {
			return err
		}
		if *outFile == "" {
			_, err := g.stdout.Write(pt)
			return err
		}
		if err := os.WriteFile(*outFile, pt, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", *outFile, err)
		}
		return emit(g, recordMeta(rec), fmt.Sprintf("wrote %s (%d bytes, %s, record %s)", *outFile, len(pt), rec.Category, rec.ID))
	}
}

// getRecords reads several records under one signed request (all or
// none) and writes each into dir, named by its ID. dir is made before the
// node is asked, so that a read the ledger records is never one the files
// could not be written for; if the node refuses, a dir made here is
// removed again.
func getRecords(ctx context.Context, g *globals, key ident.Private, ids []string, purpose, dir string) error {
	_, err := os.Stat(dir)
	made := errors.Is(err, os.ErrNotExist)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	opened, err := client.New(g.node).GetRecords(ctx, key, ids, purpose)
	if err != nil {
		if made {
			_ = os.Remove(dir) // empty: nothing was written
		}
		return err
	}
	metas := make([]map[string]any, len(opened))
	for i, o := range opened {
		path := filepath.Join(dir, o.Record.ID)
		if err := os.WriteFile(path, o.Plaintext, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		metas[i] = recordMeta(o.Record)
		metas[i]["file"] = path
	}
	return emit(g, map[string]any{"records": metas}, fmt.Sprintf("wrote %d records to %s", len(opened), dir))
}

func recordMeta(rec client.Record) map[string]any {
	return map[string]any{"id": rec.ID, "patient": rec.Patient, "author": rec.Author, "category": rec.Category, "height": rec.Height}
}

func recordListCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "reader `KEY`")
	patient := fs.String("patient", "", "the `PATIENT` (default: the reader)")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		key, pid, err := signerFor(ctx, g, *as, *patient)
		if err != nil {
			return err
		}
		recs, err := client.New(g.node).Records(ctx, key, pid)
		if err != nil {
			return err
		}
		type row struct {
			ID       string `json:"id"`
			Category string `json:"category"`
			Author   string `json:"author"`
			Height   int64  `json:"height"`
		}
		rows := []row{}
		var b strings.Builder
		for _, r := range recs {
			rows = append(rows, row{r.ID, r.Category, r.Author, r.Height})
			fmt.Fprintf(&b, "%s  %-14s  %s  height %d\n", r.ID, r.Category, r.Author, r.Height)
		}
		if len(rows) == 0 {
			b.WriteString("no records you may see")
		}
		return emit(g, map[string]any{"records": rows}, b.String())
	}
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func consentGrantCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "the patient's `KEY`")
	to := fs.String("to", "", "the `GRANTEE`: a member or an organization")
	cats := fs.String("categories", "all", "categories, comma separated, or all (sensitive ones only when named)")
	purposes := fs.String("purpose", "treatment", "purposes, comma separated")
	actions := fs.String("actions", "read", "read, write or read,write")
	expires := fs.Duration("expires", 0, "ends this long after the grant commits (e.g. 720h)")
	until := fs.String("until", "", "ends at this `RFC3339` time (block time)")
	cond := fs.String("condition", "", "a CEL condition that must hold at each access")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		if *to == "" {
			return usagef("--to GRANTEE is required")
		}
		if *expires != 0 && *until != "" {
			return usagef("give --expires or --until, not both")
		}
		if *expires < 0 {
			return usagef("--expires must be positive")
		}
		o := client.GrantOptions{Categories: splitList(*cats), Purposes: splitList(*purposes), Actions: splitList(*actions),
			ExpiresIn: *expires, Condition: *cond}
		if *until != "" {
			t, err := time.Parse(time.RFC3339, *until)
			if err != nil {
				return usagef("--until %q: want an RFC3339 time such as 2027-01-31T00:00:00Z", *until)
			}
			o.Until = t
		}
		if err := checkTerms(o); err != nil {
			return err
		}
		var err error
		if o.Grantee, err = resolveID(ctx, g, *to); err != nil {
			return err
		}
		key, err := loadSigner(g, *as)
		if err != nil {
			return err
		}
		id, res, err := client.New(g.node).Grant(ctx, key, o)
		if err != nil {
			return err
		}
		out := txOutput{ID: id, Tx: res.Hash, Height: res.Height}
		return emit(g, out, out.text())
	}
}

// checkTerms validates the vocabulary locally so a typo fails fast (the
// ledger checks again).
func checkTerms(o client.GrantOptions) error {
	for _, c := range o.Categories {
		if c != consent.All && !consent.ValidCategory(c) {
			return usagef("--categories: unknown %q; use all or %s", c, strings.Join(consent.Categories, ", "))
		}
	}
	for _, p := range o.Purposes {
		if !consent.ValidPurpose(p) {
			return usagef("--purpose: unknown %q; use %s", p, strings.Join(consent.Purposes, ", "))
		}
	}
	for _, a := range o.Actions {
		if !consent.ValidAction(a) {
			return usagef("--actions: unknown %q; use read, write", a)
		}
	}
	return nil
}

func consentRevokeCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "the patient's `KEY`")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 1, "one consent ID"); err != nil {
			return err
		}
		key, err := loadSigner(g, *as)
		if err != nil {
			return err
		}
		res, err := client.New(g.node).Revoke(ctx, key, args[0])
		if err != nil {
			return err
		}
		out := txOutput{Tx: res.Hash, Height: res.Height}
		return emit(g, out, out.text())
	}
}

func consentListCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "the `ACTOR`: a patient, or a grantee")
	patient := fs.String("patient", "", "list this `PATIENT`'s consents (the patient only)")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		key, err := loadSigner(g, *as)
		if err != nil {
			return err
		}
		pid := ""
		if *patient != "" {
			if pid, err = resolveID(ctx, g, *patient); err != nil {
				return err
			}
		}
		cs, err := client.New(g.node).Consents(ctx, key, pid)
		if err != nil {
			return err
		}
		type row struct {
			ID         string   `json:"id"`
			Patient    string   `json:"patient"`
			Grantee    string   `json:"grantee"`
			Categories []string `json:"categories"`
			Purposes   []string `json:"purposes"`
			Actions    []string `json:"actions"`
			Until      string   `json:"until"`
			Condition  string   `json:"condition,omitempty"`
			Revoked    bool     `json:"revoked"`
			Height     int64    `json:"height"`
		}
		rows := []row{}
		var b strings.Builder
		for _, c := range cs {
			until := ""
			if c.Until != 0 {
				until = time.Unix(0, c.Until).UTC().Format(time.RFC3339)
			}
			rows = append(rows, row{c.ID, c.Patient, c.Grantee, c.Categories, c.Purposes, c.Actions, until, c.Condition, c.Revoked, c.Height})
			state := "active"
			if c.Revoked {
				state = "revoked"
			}
			fmt.Fprintf(&b, "%s  to %s  %s  %s  %s  until %q  %s\n", c.ID, c.Grantee, strings.Join(c.Categories, ","),
				strings.Join(c.Purposes, ","), strings.Join(c.Actions, ","), until, state)
		}
		if len(rows) == 0 {
			b.WriteString("no consents")
		}
		return emit(g, map[string]any{"consents": rows}, b.String())
	}
}

func accessLogCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "the patient's `KEY`")
	patient := fs.String("patient", "", "the `PATIENT` (default: --as)")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		key, pid, err := signerFor(ctx, g, *as, *patient)
		if err != nil {
			return err
		}
		evs, err := client.New(g.node).AccessLog(ctx, key, pid)
		if err != nil {
			return err
		}
		type row struct {
			Record   string `json:"record"`
			Accessor string `json:"accessor"`
			Purpose  string `json:"purpose"`
			Consent  string `json:"consent"`
			Height   int64  `json:"height"`
			Time     string `json:"time"`
		}
		rows := []row{}
		var b strings.Builder
		for _, e := range evs {
			t := time.Unix(0, e.Time).UTC().Format(time.RFC3339Nano)
			rows = append(rows, row{e.Record, e.Accessor, e.Purpose, e.Consent, e.Height, t})
			fmt.Fprintf(&b, "%s  %s read %s for %s (consent %s, height %d)\n", t, e.Accessor, e.Record, e.Purpose, e.Consent, e.Height)
		}
		if len(rows) == 0 {
			b.WriteString("no one has read these records")
		}
		return emit(g, map[string]any{"events": rows}, b.String())
	}
}

// signerFor loads the signing key and resolves the patient a command is
// about: --patient when given, else the signer itself.
func signerFor(ctx context.Context, g *globals, as, patient string) (ident.Private, string, error) {
	key, err := loadSigner(g, as)
	if err != nil {
		return ident.Private{}, "", err
	}
	if patient == "" {
		return key, key.ID(), nil
	}
	pid, err := resolveID(ctx, g, patient)
	return key, pid, err
}
