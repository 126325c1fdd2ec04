package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/medchain/medchain/ident"
)

// IdentityFile holds the node's own ledger identity, which signs the access
// batches that record the reads this node served. Like CometBFT's validator
// key beside it, it is protected by file permissions, not a passphrase: a
// node must start unattended.
const IdentityFile = "config/node_identity.json"

type identityFile struct {
	Sign []byte `json:"sign_seed"`
	Box  []byte `json:"box_seed"`
}

func newIdentity(home string) (ident.Private, error) {
	k, err := ident.Generate()
	if err != nil {
		return ident.Private{}, err
	}
	sign, box, err := k.Seeds()
	if err != nil {
		return ident.Private{}, err
	}
	b, err := json.Marshal(identityFile{Sign: sign, Box: box})
	if err != nil {
		return ident.Private{}, err
	}
	return k, writeFile(filepath.Join(home, IdentityFile), b)
}

func loadIdentity(home string) (ident.Private, error) {
	b, err := os.ReadFile(filepath.Join(home, IdentityFile))
	if err != nil {
		return ident.Private{}, fmt.Errorf("read node identity: %w", err)
	}
	var f identityFile
	if err := json.Unmarshal(b, &f); err != nil {
		return ident.Private{}, fmt.Errorf("%s is corrupt: %w", IdentityFile, err)
	}
	k, err := ident.FromSeeds(f.Sign, f.Box)
	if err != nil {
		return ident.Private{}, fmt.Errorf("%s is corrupt: %w", IdentityFile, err)
	}
	return k, nil
}
