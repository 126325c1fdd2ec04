// Command medchain runs a medchain node and talks to one. This package only
// parses flags and prints; the work happens in the packages it calls.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/medchain/medchain/client"
)

// Exit statuses, as SPEC fixes them.
const (
	exitFail   = 1
	exitUsage  = 2
	exitDenied = 3
)

// usageError is bad usage: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// globals are the options every command takes.
type globals struct {
	home, keyring, node, output string
	stdout, stderr              io.Writer
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.home, "home", envOr("MEDCHAIN_HOME", defaultPath("node")), "node home `DIR`")
	fs.StringVar(&g.keyring, "keyring", envOr("MEDCHAIN_KEYRING", defaultPath("keys")), "keyring `DIR`")
	fs.StringVar(&g.node, "node", envOr("MEDCHAIN_NODE", "http://127.0.0.1:8780"), "node API `URL`")
	fs.StringVar(&g.output, "output", envOr("MEDCHAIN_OUTPUT", "text"), "output format: text or json")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func defaultPath(sub string) string {
	h, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(".medchain", sub)
	}
	return filepath.Join(h, ".medchain", sub)
}

// command is one subcommand.
type command struct {
	name  string // "org add"
	args  string // usage after the flags
	short string
	flags func(fs *flag.FlagSet) func(ctx context.Context, g *globals, args []string) error
}

func commands() []command {
	return []command{
		{"init", "", "create a node home with a one-validator genesis and an admin key", initCmd},
		{"node", "", "run the node (initializes an empty home first)", nodeCmd},
		{"testnet", "", "write N node homes that form one network on 127.0.0.1", testnetCmd},
		{"verify", "", "check the stopped node's whole history offline", verifyCmd},
		{"status", "", "show the node's status", statusCmd},
		{"bench", "", "measure throughput and latency against bare CometBFT", benchCmd},
		{"keys new", "NAME", "create a key in the keyring", keysNewCmd},
		{"keys show", "NAME", "show a key's ID (and public key)", keysShowCmd},
		{"keys list", "", "list the keyring", keysListCmd},
		{"org add", "", "admit an organization (network admins)", orgAddCmd},
		{"member add", "", "admit a member into an organization (the organization)", memberAddCmd},
		{"patient add", "", "register a patient (the patient)", patientAddCmd},
		{"record put", "FILE", "encrypt a file and record it for a patient", recordPutCmd},
		{"record get", "ID...", "read and decrypt records (each leaves an access event)", recordGetCmd},
		{"record list", "", "list a patient's records you may see", recordListCmd},
		{"consent grant", "", "grant a member or organization access (the patient)", consentGrantCmd},
		{"consent revoke", "ID", "revoke a consent (the patient)", consentRevokeCmd},
		{"consent list", "", "list consents: a patient's, or those granted to you", consentListCmd},
		{"access log", "", "list who read a patient's records (the patient)", accessLogCmd},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	cmd, rest := lookup(args)
	if cmd == nil {
		switch {
		case len(args) == 0:
			usage(stderr)
			return exitUsage
		case args[0] == "help" || args[0] == "-h" || args[0] == "--help":
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "medchain: unknown command %q; run `medchain help` for the list\n", strings.Join(args[:min(2, len(args))], " "))
		return exitUsage
	}
	fs := flag.NewFlagSet("medchain "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs)
	action := cmd.flags(fs)
	pos, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stderr)
		fmt.Fprintf(stderr, "usage: medchain %s [flags] %s\n\n%s\n\nflags:\n", cmd.name, cmd.args, cmd.short)
		fs.PrintDefaults()
		return 0
	}
	if err == nil && g.output != "text" && g.output != "json" {
		err = usagef("--output %q: use text or json", g.output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "medchain %s: %v; see `medchain %s -h`\n", cmd.name, err, cmd.name)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err = action(ctx, g, pos)
	return report(g, cmd.name, err)
}

// report prints err as one line and returns the exit status it calls for.
func report(g *globals, name string, err error) int {
	if err == nil {
		return 0
	}
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	fmt.Fprintf(g.stderr, "medchain %s: %s\n", name, msg)
	var u usageError
	switch {
	case errors.As(err, &u):
		return exitUsage
	case client.Denied(err):
		return exitDenied
	}
	return exitFail
}

// lookup finds the longest command name that prefixes args.
func lookup(args []string) (*command, []string) {
	cmds := commands()
	for n := min(2, len(args)); n >= 1; n-- {
		name := strings.Join(args[:n], " ")
		for i := range cmds {
			if cmds[i].name == name {
				return &cmds[i], args[n:]
			}
		}
	}
	return nil, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "medchain: a health-records ledger where patients decide who reads what.\n\nusage: medchain COMMAND [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-14s %s\n", c.name, c.short)
	}
	fmt.Fprintln(w, "\nglobal flags: --home DIR, --keyring DIR, --node URL, --output text|json\nrun `medchain COMMAND -h` for a command's flags.")
}

// parseInterspersed parses flags that may come before, between or after
// positional arguments; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// emit prints v as one JSON object, or text as lines.
func emit(g *globals, v any, text string) error {
	if g.output == "json" {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(g.stdout, "%s\n", b)
		return err
	}
	_, err := fmt.Fprintln(g.stdout, strings.TrimRight(text, "\n"))
	return err
}

// wantArgs checks the number of positional arguments.
func wantArgs(args []string, n int, what string) error {
	if len(args) != n {
		if n == 0 {
			return usagef("unexpected argument %q", args[0])
		}
		return usagef("want %s, got %d argument(s)", what, len(args))
	}
	return nil
}
