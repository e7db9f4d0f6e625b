// Command certd issues signed course certificates for Open edX.
//
//	certd all        everything in one process (embedded NATS by default)
//	certd demo       certd all on local storage, fed with sample jobs
//	certd bench      the whole pipeline in one process under load: speed report
//	certd bridge     xqueue intake and result relay, against --nats-url
//	certd consumer   certificate workers, against --nats-url
//	certd control    the gRPC control service, against --nats-url
//	certd keygen     make a signing key pair
//	certd render     render certificates into a directory
//	certd verify     check a certificate against its signature
//	certd version    print the version
//
// Run `certd <command> --help` for the settings of a command.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/certd-dev/certd/internal/pipeline"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

var commands = map[string]command{}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "version" || args[0] == "--version" {
		fmt.Fprintln(stdout, "certd", pipeline.Version)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "certd: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return 0 // stopped (SIGTERM) while a part was still starting
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "certd %s: %v\n", args[0], err)
	return 1
}

// errUsage is returned after a usage message was printed.
var errUsage = errors.New("usage")

func usage(w io.Writer) {
	fmt.Fprintln(w, "certd issues signed course certificates for Open edX.\n\nUsage: certd <command> [settings]\n\nCommands:")
	for _, n := range []string{"all", "demo", "bench", "bridge", "consumer", "control", "keygen", "render", "verify", "version"} {
		s := "print the version"
		if c, ok := commands[n]; ok {
			s = c.summary
		}
		fmt.Fprintf(w, "  %-9s %s\n", n, s)
	}
	fmt.Fprintln(w, "\nEvery setting is a flag, an environment variable CERTD_<NAME> or a key in --config FILE.\nRun 'certd <command> --help' for the settings of a command.")
}

// loadConfig declares a command's settings (parts, see newConfig), parses
// them and builds its logger (on stderr) from log.
func loadConfig(cmd string, args []string, stderr io.Writer, parts any, log *LogSettings) (*config, *slog.Logger, error) {
	c := newConfig(cmd, stderr, parts)
	if err := c.parse(args); err != nil {
		return nil, nil, err
	}
	return c, newLogger(c, log, stderr), nil
}

// newLogger builds the process logger from log-level and log-format.
func newLogger(c *config, s *LogSettings, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.Level)); err != nil {
		c.bad(&s.Level, "%q is not debug, info, warn or error", s.Level)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(s.Format) {
	case "json":
		h = slog.NewJSONHandler(w, opts)
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	default:
		c.bad(&s.Format, "%q is not text or json", s.Format)
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h)
}
