package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/medchain/medchain/client"
	"github.com/medchain/medchain/keyring"
	"github.com/medchain/medchain/node"
	"github.com/medchain/medchain/verify"
)

type initFlags struct {
	chainID, api, rpc, p2p *string
	blockTime              *time.Duration
}

func registerInit(fs *flag.FlagSet) initFlags {
	return initFlags{
		chainID:   fs.String("chain-id", node.DefaultChainID, "chain `ID`"),
		api:       fs.String("api-addr", node.DefaultAPIAddr, "API listen `HOST:PORT`"),
		rpc:       fs.String("rpc-addr", node.DefaultRPCAddr, "CometBFT RPC listen `HOST:PORT`"),
		p2p:       fs.String("p2p-addr", node.DefaultP2PAddr, "peer-to-peer listen `HOST:PORT`"),
		blockTime: fs.Duration("block-time", node.DefaultBlockTime, "pause after each commit: the idle block interval"),
	}
}

// doInit creates the home; generate allows a generated admin passphrase.
func doInit(g *globals, f initFlags, generate bool) (map[string]string, error) {
	if node.Initialized(g.home) {
		return nil, fmt.Errorf("%s already holds a node; pick another --home or remove it", g.home)
	}
	admin, err := adminKey(g, generate)
	if err != nil {
		return nil, err
	}
	_, err = node.Init(node.InitOptions{
		Home: g.home, ChainID: *f.chainID, APIAddr: *f.api, RPCAddr: *f.rpc, P2PAddr: *f.p2p,
		BlockTime: *f.blockTime, Admins: []string{admin.String()},
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"home": g.home, "chain_id": *f.chainID, "admin": admin.ID()}, nil
}

func initCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	f := registerInit(fs)
	return func(_ context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		out, err := doInit(g, f, false)
		if err != nil {
			return err
		}
		return emit(g, out, fmt.Sprintf("home:     %s\nchain_id: %s\nadmin:    %s (key \"admin\" in %s)", out["home"], out["chain_id"], out["admin"], g.keyring))
	}
}

func nodeCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	f := registerInit(fs)
	logLevel := fs.String("log-level", "info", "medchain log level: debug, info, warn, error")
	cometLevel := fs.String("comet-log-level", "error", "CometBFT log level: debug, info, error")
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
			return usagef("--log-level %q: use debug, info, warn or error", *logLevel)
		}
		log := slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
		if !node.Initialized(g.home) {
			out, err := doInit(g, f, true)
			if err != nil {
				return fmt.Errorf("initialize %s: %w", g.home, err)
			}
			log.Info("initialized a new one-validator chain", "home", out["home"], "chain_id", out["chain_id"], "admin", out["admin"], "keyring", g.keyring)
		}
		node.UseSpareProcs()
		node.UseHugePages(ctx, log)
		n, err := node.Start(g.home, log, node.Options{CometLogLevel: *cometLevel})
		if err != nil {
			return err
		}
		<-ctx.Done()
		log.Info("shutting down")
		n.Stop()
		log.Info("stopped cleanly")
		return nil
	}
}

func testnetCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	n := fs.Int("validators", 4, "number of validators")
	out := fs.String("out", "", "output `DIR` for the node homes and the shared keyring")
	base := fs.Int("base-port", 26600, "first port: node i uses base+10i (p2p), +1 (rpc), +2 (api)")
	chainID := fs.String("chain-id", "medchain-testnet", "chain `ID`")
	blockTime := fs.Duration("block-time", node.DefaultBlockTime, "pause after each commit")
	return func(_ context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		if *out == "" {
			return usagef("--out DIR is required")
		}
		g.keyring = filepath.Join(*out, "keyring")
		pass, err := keyring.Passphrase("passphrase for the shared network-admin key \"admin\": ", true)
		if err != nil {
			return err
		}
		kr, err := openKeyring(g)
		if err != nil {
			return err
		}
		admin, err := kr.New("admin", pass)
		if err != nil {
			return fmt.Errorf("create admin key in %s: %w", g.keyring, err)
		}
		nodes, err := node.Testnet(node.TestnetOptions{Out: *out, Validators: *n, BasePort: *base, ChainID: *chainID,
			BlockTime: *blockTime, Admins: []string{admin.Public().String()}})
		if err != nil {
			return err
		}
		var b strings.Builder
		for _, nd := range nodes {
			fmt.Fprintf(&b, "%s  %s\n", nd.Home, nd.API)
		}
		fmt.Fprintf(&b, "admin key: %s in %s\nstart each with: medchain node --home DIR", admin.ID(), g.keyring)
		return emit(g, map[string]any{"nodes": nodes, "keyring": g.keyring, "admin": admin.ID()}, b.String())
	}
}

func statusCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		st, err := client.New(g.node).Status(ctx)
		if err != nil {
			return err
		}
		return emit(g, st, fmt.Sprintf("chain_id:   %s\nheight:     %d\nnode_id:    %s\nvalidators: %d\npeers:      %d\napp_hash:   %s",
			st.ChainID, st.Height, st.NodeID, st.Validators, st.Peers, st.AppHash))
	}
}

func verifyCmd(fs *flag.FlagSet) func(context.Context, *globals, []string) error {
	return func(ctx context.Context, g *globals, args []string) error {
		if err := wantArgs(args, 0, ""); err != nil {
			return err
		}
		rep, verr := verify.Home(ctx, g.home)
		text := fmt.Sprintf("ok: %d blocks, %d records, %d state keys, %d blobs checked", rep.Blocks, rep.Records, rep.StateKeys, rep.Blobs)
		if rep.BlobsMissing > 0 {
			text += fmt.Sprintf(" (%d blobs not fetched from peers yet)", rep.BlobsMissing)
		}
		if verr != nil {
			rep.Error = verr.Error()
			text = "FAILED: " + rep.Error
		}
		if err := emit(g, rep, text); err != nil {
			return err
		}
		if verr != nil {
			return fmt.Errorf("verification failed: %w", verr)
		}
		return nil
	}
}
