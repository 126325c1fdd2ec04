package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/types"
	cmttime "github.com/cometbft/cometbft/types/time"

	"github.com/medchain/medchain/app"
	"github.com/medchain/medchain/ident"
)

// ConfigFile is the node's own settings file inside its home.
const ConfigFile = "medchain.json"

// Defaults for a single local node.
const (
	DefaultChainID   = "medchain-local"
	DefaultAPIAddr   = "127.0.0.1:8780"
	DefaultRPCAddr   = "127.0.0.1:26657"
	DefaultP2PAddr   = "127.0.0.1:26656"
	DefaultBlockTime = 100 * time.Millisecond
	// IdleBlockInterval is the longest a network with nothing to do waits
	// before it makes an empty block: the ledger's clock, which judges
	// consent start and expiry, never stands still for longer.
	IdleBlockInterval = time.Second
)

// ErrNoHome reports a home that has not been initialized.
var ErrNoHome = errors.New("node home not initialized")

// Config is a node's settings, kept in HOME/medchain.json. CometBFT's own
// configuration is derived from it at every start.
type Config struct {
	ChainID string `json:"chain_id"`
	Moniker string `json:"moniker"`
	APIAddr string `json:"api_addr"`
	RPCAddr string `json:"rpc_addr"`
	P2PAddr string `json:"p2p_addr"`
	// Peers are persistent peers, "nodeid@host:port", comma separated.
	Peers string `json:"peers,omitempty"`
	// APIPeers are the other nodes' APIs, "nodeid@http://host:port", for
	// blob replication.
	APIPeers []string `json:"api_peers,omitempty"`
	// BlockTime is how long a validator waits after a commit before it
	// proposes the next block: the block interval of a busy network. An
	// idle network makes a block every max(BlockTime, IdleBlockInterval).
	BlockTime Duration `json:"block_time"`
	// MaxBodyBytes bounds an API request body.
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// PEX turns CometBFT's peer exchange on (the default) or off. Off, a
	// node dials only its configured peers: for networks behind proxies or
	// with fixed topologies.
	PEX *bool `json:"pex,omitempty"`
}

// Duration is a time.Duration spelled as "500ms" in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v <= 0 || v > time.Minute {
		return fmt.Errorf("block_time %s out of range (0, 1m]", s)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads HOME/medchain.json.
func LoadConfig(home string) (*Config, error) {
	b, err := os.ReadFile(filepath.Join(home, ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s has no %s; run `medchain init` first", ErrNoHome, home, ConfigFile)
	}
	if err != nil {
		return nil, err
	}
	c := &Config{}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(home, ConfigFile), err)
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	return c, nil
}

func (c *Config) save(home string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(home, ConfigFile), append(b, '\n'))
}

// CometConfig derives CometBFT's configuration for a node in home.
func (c *Config) CometConfig(home string) *cmtcfg.Config {
	cfg := cmtcfg.DefaultConfig()
	cfg.SetRoot(home)
	cfg.Moniker = c.Moniker
	cfg.RPC.ListenAddress = "tcp://" + c.RPCAddr
	cfg.P2P.ListenAddress = "tcp://" + c.P2PAddr
	cfg.P2P.PersistentPeers = c.Peers
	cfg.P2P.AddrBookStrict = false // peers on 127.0.0.1 are legitimate here
	cfg.P2P.AllowDuplicateIP = true
	cfg.P2P.PexReactor = c.PEX == nil || *c.PEX
	cfg.P2P.PersistentPeersMaxDialPeriod = 5 * time.Second
	cfg.Consensus.TimeoutCommit = time.Duration(c.BlockTime)
	cfg.Consensus.TimeoutPropose = 2 * time.Second
	cfg.Consensus.CreateEmptyBlocks = true
	cfg.Consensus.CreateEmptyBlocksInterval = max(IdleBlockInterval, time.Duration(c.BlockTime))
	cfg.Mempool.Size = 20000
	// Rechecking every pending transaction after each block costs a second
	// full check of every record batch; FinalizeBlock checks everything
	// again anyway, so a transaction a block made invalid only fails there.
	cfg.Mempool.Recheck = false
	cfg.Mempool.MaxTxBytes = 1 << 20 // tx.MaxBatchSize
	cfg.Mempool.MaxTxsBytes = 256 << 20
	cfg.TxIndex.Indexer = "null" // medchain answers its own queries
	cfg.Instrumentation.Prometheus = false
	return cfg
}

// InitOptions describes a new home.
type InitOptions struct {
	Home      string
	ChainID   string
	APIAddr   string
	RPCAddr   string
	P2PAddr   string
	BlockTime time.Duration
	// Admins are the network admins' public keys.
	Admins []string
}

func (o *InitOptions) defaults() {
	if o.ChainID == "" {
		o.ChainID = DefaultChainID
	}
	if o.APIAddr == "" {
		o.APIAddr = DefaultAPIAddr
	}
	if o.RPCAddr == "" {
		o.RPCAddr = DefaultRPCAddr
	}
	if o.P2PAddr == "" {
		o.P2PAddr = DefaultP2PAddr
	}
	if o.BlockTime == 0 {
		o.BlockTime = DefaultBlockTime
	}
}

// Initialized reports whether home holds a node.
func Initialized(home string) bool {
	_, err := os.Stat(filepath.Join(home, ConfigFile))
	return err == nil
}

// Init creates a home with a one-validator genesis.
func Init(o InitOptions) (*Config, error) {
	o.defaults()
	if Initialized(o.Home) {
		return nil, fmt.Errorf("%s already holds a node; pick another --home or remove it", o.Home)
	}
	cfg, pv, id, err := prepareHome(o, "node0")
	if err != nil {
		return nil, err
	}
	val := types.GenesisValidator{Address: pv.Key.PubKey.Address(), PubKey: pv.Key.PubKey, Power: 10, Name: "node0"}
	g, err := makeGenesis(o.ChainID, []types.GenesisValidator{val}, o.Admins, []string{id.Public().String()})
	if err != nil {
		return nil, err
	}
	if err := g.SaveAs(filepath.Join(o.Home, "config", "genesis.json")); err != nil {
		return nil, err
	}
	return cfg, cfg.save(o.Home)
}

// prepareHome makes directories, keys and the config, but no genesis.
func prepareHome(o InitOptions, moniker string) (*Config, *privval.FilePV, ident.Private, error) {
	cc := cmtcfg.DefaultConfig()
	cc.SetRoot(o.Home)
	for _, d := range []string{filepath.Join(o.Home, "config"), filepath.Join(o.Home, "data")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, ident.Private{}, fmt.Errorf("create home: %w", err)
		}
	}
	pv := privval.NewFilePV(ed25519.GenPrivKey(), cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile())
	pv.Save()
	if _, err := p2p.LoadOrGenNodeKey(cc.NodeKeyFile()); err != nil {
		return nil, nil, ident.Private{}, fmt.Errorf("create node key: %w", err)
	}
	id, err := newIdentity(o.Home)
	if err != nil {
		return nil, nil, ident.Private{}, fmt.Errorf("create node identity: %w", err)
	}
	cfg := &Config{
		ChainID: o.ChainID, Moniker: moniker,
		APIAddr: o.APIAddr, RPCAddr: o.RPCAddr, P2PAddr: o.P2PAddr,
		BlockTime: Duration(o.BlockTime), MaxBodyBytes: 1 << 20,
	}
	return cfg, pv, id, nil
}

func makeGenesis(chainID string, vals []types.GenesisValidator, admins, nodes []string) (*types.GenesisDoc, error) {
	appState, err := json.Marshal(app.Genesis{Admins: admins, Nodes: nodes, StateVersion: app.StateVersion})
	if err != nil {
		return nil, err
	}
	params := types.DefaultConsensusParams()
	params.Block.MaxBytes = 8 << 20
	g := &types.GenesisDoc{
		ChainID:         chainID,
		GenesisTime:     cmttime.Now(),
		ConsensusParams: params,
		Validators:      vals,
		AppState:        appState,
	}
	if err := g.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	return g, nil
}

// writeFile writes atomically: temp file, sync, rename.
func writeFile(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
