package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/keyring"
)

func openKeyring(g *globals) (*keyring.Keyring, error) {
	kr, err := keyring.Open(g.keyring)
	if err != nil {
		return nil, fmt.Errorf("open keyring %s: %w", g.keyring, err)
	}
	return kr, nil
}

// loadSigner loads the private key named (or with the ID) ref.
func loadSigner(g *globals, ref string) (ident.Private, error) {
	if ref == "" {
		return ident.Private{}, usagef("say who acts, with --as NAME (a key in %s)", g.keyring)
	}
	kr, err := openKeyring(g)
	if err != nil {
		return ident.Private{}, err
	}
	name, err := kr.Resolve(ref)
	if errors.Is(err, keyring.ErrNotFound) {
		return ident.Private{}, fmt.Errorf("no key %q in keyring %s; create it with `medchain keys new %s` or pass --keyring", ref, g.keyring, ref)
	}
	if err != nil {
		return ident.Private{}, err
	}
	pass, err := keyring.Passphrase(fmt.Sprintf("passphrase for key %q: ", name), false)
	if err != nil {
		return ident.Private{}, err
	}
	k, err := kr.Load(name, pass)
	if errors.Is(err, keyring.ErrWrongPassphrase) {
		return ident.Private{}, fmt.Errorf("wrong passphrase for key %q; check MEDCHAIN_PASSPHRASE", name)
	}
	return k, err
}

// resolvePublic turns a keyring name, an actor ID or a printed public key
// into a public identity.
func resolvePublic(ctx context.Context, g *globals, ref string) (ident.Public, error) {
	if strings.HasPrefix(ref, "mcpub1") {
		return ident.ParsePublic(strings.TrimSpace(ref)) // as pasted, with its line break
	}
	kr, err := openKeyring(g)
	if err != nil {
		return ident.Public{}, err
	}
	name, err := kr.Resolve(ref)
	if err == nil {
		pub, _, err := kr.Public(name)
		return pub, err
	}
	if !errors.Is(err, keyring.ErrNotFound) {
		return ident.Public{}, err
	}
	if ident.ValidID(ref) {
		a, err := client.New(g.node).Actor(ctx, ref)
		if err != nil {
			return ident.Public{}, fmt.Errorf("actor %s: %w", ref, err)
		}
		return ident.ParsePublic(a.Public)
	}
	return ident.Public{}, usagef("%q is neither a key in %s, an actor ID, nor a public key (mcpub1…)", ref, g.keyring)
}

// resolveID turns a keyring name or an actor ID into an actor ID.
func resolveID(ctx context.Context, g *globals, ref string) (string, error) {
	if ident.ValidID(ref) {
		return ref, nil
	}
	pub, err := resolvePublic(ctx, g, ref)
	if err != nil {
		return "", err
	}
	return pub.ID(), nil
}

func keysNewCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	return func(_ context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 1, "a key NAME"); err != nil {
			return err
		}
		kr, err := openKeyring(g)
		if err != nil {
			return err
		}
		if !keyring.ValidName(args[0]) {
			return usagef("key name %q: use lowercase letters, digits, '.', '_' and '-', at most 64", args[0])
		}
		pass, err := keyring.Passphrase(fmt.Sprintf("passphrase for new key %q: ", args[0]), true)
		if err != nil {
			return err
		}
		k, err := kr.New(args[0], pass)
		if errors.Is(err, keyring.ErrExists) {
			return fmt.Errorf("key %q already exists in %s; pick another name", args[0], g.keyring)
		}
		if err != nil {
			return err
		}
		return emit(g, map[string]string{"name": args[0], "id": k.ID()}, fmt.Sprintf("name: %s\nid:   %s", args[0], k.ID()))
	}
}

func keysShowCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	public := fs.Bool("public", false, "also print the public key, for use on another machine")
	return func(_ context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 1, "a key NAME"); err != nil {
			return err
		}
		kr, err := openKeyring(g)
		if err != nil {
			return err
		}
		name, err := kr.Resolve(args[0])
		if errors.Is(err, keyring.ErrNotFound) {
			return fmt.Errorf("no key %q in keyring %s", args[0], g.keyring)
		}
		if err != nil {
			return err
		}
		pub, id, err := kr.Public(name)
		if err != nil {
			return err
		}
		text := fmt.Sprintf("name: %s\nid:   %s", name, id)
		if *public {
			text += "\npublic: " + pub.String()
		}
		return emit(g, map[string]string{"name": name, "id": id, "public": pub.String()}, text)
	}
}

func keysListCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	return func(_ context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		kr, err := openKeyring(g)
		if err != nil {
			return err
		}
		list, err := kr.List()
		if err != nil && len(list) == 0 {
			return err
		}
		type entry struct {
			Name string `json:"name"`
			ID   string `json:"id"`
		}
		keys := []entry{}
		var b strings.Builder
		for _, e := range list {
			keys = append(keys, entry{e.Name, e.ID})
			fmt.Fprintf(&b, "%-20s %s\n", e.Name, e.ID)
		}
		return emit(g, map[string]any{"keys": keys}, b.String())
	}
}

// adminKey returns the public key of the keyring's "admin", creating it if
// needed. With no passphrase to be had (no MEDCHAIN_PASSPHRASE, no terminal)
// and generate set, it makes a random passphrase and keeps it beside the
// key, readable by the owner only, and says so.
func adminKey(g *globals, generate bool) (ident.Public, error) {
	kr, err := openKeyring(g)
	if err != nil {
		return ident.Public{}, err
	}
	if pub, _, err := kr.Public("admin"); err == nil {
		return pub, nil
	} else if !errors.Is(err, keyring.ErrNotFound) {
		return ident.Public{}, err
	}
	pass, err := keyring.Passphrase("passphrase for the new network-admin key \"admin\": ", true)
	if err != nil && generate {
		pass, err = generatedPassphrase(g)
	}
	if err != nil {
		return ident.Public{}, err
	}
	k, err := kr.New("admin", pass)
	if err != nil {
		return ident.Public{}, err
	}
	return k.Public(), nil
}

func generatedPassphrase(g *globals) (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	pass := base64.RawURLEncoding.EncodeToString(b)
	path := filepath.Join(g.keyring, "admin.passphrase")
	if err := os.WriteFile(path, []byte(pass+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("keep generated passphrase: %w", err)
	}
	fmt.Fprintf(g.stderr, "medchain: no MEDCHAIN_PASSPHRASE and no terminal: the admin key's passphrase was generated into %s (mode 0600); use it with MEDCHAIN_PASSPHRASE=$(cat %s), then move it somewhere safe\n", path, path)
	return pass, nil
}
