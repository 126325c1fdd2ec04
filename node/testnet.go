package node

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/types"
)

// TestnetOptions describes a local multi-validator network.
type TestnetOptions struct {
	Out        string
	Validators int
	BasePort   int
	ChainID    string
	BlockTime  time.Duration
	Admins     []string
}

// TestnetNode is one home of a testnet.
type TestnetNode struct {
	Home string `json:"home"`
	API  string `json:"api"`
}

// Ports of node i: p2p base+10i, rpc base+10i+1, api base+10i+2.
func testnetAddr(base, i, off int) string { return fmt.Sprintf("127.0.0.1:%d", base+10*i+off) }

// Testnet writes Validators homes, DIR/node0 …, sharing one genesis, each
// with every other as a persistent peer on 127.0.0.1.
func Testnet(o TestnetOptions) ([]TestnetNode, error) {
	if o.Validators < 1 || o.Validators > 64 {
		return nil, fmt.Errorf("--validators %d: use 1 to 64", o.Validators)
	}
	if o.BasePort < 1024 || o.BasePort+10*o.Validators > 65535 {
		return nil, fmt.Errorf("--base-port %d: the ports base … base+%d must lie in 1024-65535", o.BasePort, 10*o.Validators)
	}
	if o.ChainID == "" {
		o.ChainID = "medchain-testnet"
	}
	if o.BlockTime == 0 {
		o.BlockTime = DefaultBlockTime
	}
	var (
		nodes    []TestnetNode
		cfgs     []*Config
		vals     []types.GenesisValidator
		peers    []string
		apiPeers []string
		idents   []string
	)
	for i := range o.Validators {
		home := filepath.Join(o.Out, fmt.Sprintf("node%d", i))
		if Initialized(home) {
			return nil, fmt.Errorf("%s already holds a node; pick an empty --out", home)
		}
		io := InitOptions{Home: home, ChainID: o.ChainID, BlockTime: o.BlockTime,
			P2PAddr: testnetAddr(o.BasePort, i, 0), RPCAddr: testnetAddr(o.BasePort, i, 1), APIAddr: testnetAddr(o.BasePort, i, 2)}
		cfg, pv, id, err := prepareHome(io, fmt.Sprintf("node%d", i))
		if err != nil {
			return nil, err
		}
		cc := cmtcfg.DefaultConfig()
		cc.SetRoot(home)
		nk, err := p2p.LoadNodeKey(cc.NodeKeyFile())
		if err != nil {
			return nil, err
		}
		peers = append(peers, fmt.Sprintf("%s@%s", nk.ID(), cfg.P2PAddr))
		apiPeers = append(apiPeers, fmt.Sprintf("%s@http://%s", nk.ID(), cfg.APIAddr))
		vals = append(vals, types.GenesisValidator{Address: pv.Key.PubKey.Address(), PubKey: pv.Key.PubKey, Power: 10, Name: cfg.Moniker})
		cfgs = append(cfgs, cfg)
		idents = append(idents, id.Public().String())
		nodes = append(nodes, TestnetNode{Home: home, API: "http://" + cfg.APIAddr})
	}
	g, err := makeGenesis(o.ChainID, vals, o.Admins, idents)
	if err != nil {
		return nil, err
	}
	for i, cfg := range cfgs {
		var others []string
		for j, p := range peers {
			if j != i {
				others = append(others, p)
				cfg.APIPeers = append(cfg.APIPeers, apiPeers[j])
			}
		}
		cfg.Peers = strings.Join(others, ",")
		if err := g.SaveAs(filepath.Join(nodes[i].Home, "config", "genesis.json")); err != nil {
			return nil, err
		}
		if err := cfg.save(nodes[i].Home); err != nil {
			return nil, err
		}
	}
	return nodes, nil
}
