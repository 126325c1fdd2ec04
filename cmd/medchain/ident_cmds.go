package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/consent"
	"github.com/medchain/medchain/tx"
)

// txOutput is what every ledger-writing command prints.
type txOutput struct {
	ID     string `json:"id,omitempty"`
	Tx     string `json:"tx"`
	Height int64  `json:"height"`
}

func (o txOutput) text() string {
	s := fmt.Sprintf("tx:     %s\nheight: %d", o.Tx, o.Height)
	if o.ID != "" {
		s = fmt.Sprintf("id:     %s\n", o.ID) + s
	}
	return s
}

// send signs body as signer and prints the committed result.
func send(ctx context.Context, g *globals, signer string, typ tx.Type, body any, id string) error {
	key, err := loadSigner(g, signer)
	if err != nil {
		return err
	}
	res, err := client.New(g.node).Send(ctx, key, typ, body)
	if err != nil {
		return err
	}
	out := txOutput{ID: id, Tx: res.Hash, Height: res.Height}
	return emit(g, out, out.text())
}

func orgAddCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "network admin `KEY` that signs")
	key := fs.String("key", "", "the organization's `KEY`: keyring name, actor ID or public key")
	name := fs.String("name", "", "the organization's display `NAME`")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		if *key == "" || *name == "" {
			return usagef("--key and --name are required")
		}
		pub, err := resolvePublic(ctx, g, *key)
		if err != nil {
			return err
		}
		return send(ctx, g, *as, tx.TypeOrgAdd, tx.OrgAdd{Public: pub.String(), Name: *name}, pub.ID())
	}
}

func memberAddCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	as := fs.String("as", "", "organization `KEY` that signs")
	key := fs.String("key", "", "the member's `KEY`: keyring name, actor ID or public key")
	role := fs.String("role", "", "physician, nurse, pharmacist, researcher or staff")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		if *key == "" || *role == "" {
			return usagef("--key and --role are required")
		}
		if !consent.ValidRole(*role) {
			return usagef("--role %q: use one of %s", *role, strings.Join(consent.Roles, ", "))
		}
		pub, err := resolvePublic(ctx, g, *key)
		if err != nil {
			return err
		}
		return send(ctx, g, *as, tx.TypeMemberAdd, tx.MemberAdd{Public: pub.String(), Role: *role}, pub.ID())
	}
}

func patientAddCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	key := fs.String("key", "", "the patient's own `KEY` in the keyring")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		if *key == "" {
			return usagef("--key is required")
		}
		k, err := loadSigner(g, *key)
		if err != nil {
			return err
		}
		res, err := client.New(g.node).RegisterPatient(ctx, k)
		if err != nil {
			return err
		}
		out := txOutput{ID: k.ID(), Tx: res.Hash, Height: res.Height}
		return emit(g, out, out.text())
	}
}
