package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/pkg/client"
)

// cli is what every command shares: the streams, the global flags and the
// client, made on first use so that commands without one never dial.
type cli struct {
	in       io.Reader
	out, err io.Writer

	host, tlsDir, logLevel string
	clientOpts             []client.Option // tests shorten waits
	now                    func() time.Time

	c *client.Client
}

func (c *cli) client() (*client.Client, error) {
	if c.c != nil {
		return c.c, nil
	}
	// The managers learnt from the cluster are kept beside the certificates
	// that reach them, so that the next command fails over even when every
	// manager named by -H is down.
	opts := append([]client.Option{
		client.WithTLSDir(c.tlsDir), client.WithLogger(slog.Default()),
		client.WithManagersFile(client.DefaultManagersFile(c.tlsDir)),
	}, c.clientOpts...)
	cl, err := client.New(c.host, opts...)
	if err != nil {
		return nil, err
	}
	c.c = cl
	return cl, nil
}

func (c *cli) close() {
	if c.c != nil {
		_ = c.c.Close()
	}
}

func (c *cli) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

func newRootCmd(name string, c *cli) *cobra.Command {
	root := &cobra.Command{
		Use:           name,
		Short:         "Warren runs containers across a cluster of machines",
		SilenceUsage:  true,
		SilenceErrors: true,
		// Flags of the root come before the command; a bare "warren" shows help.
		PersistentPreRunE: func(*cobra.Command, []string) error { return c.setupLogging() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(c.in)
	root.SetOut(c.out)
	root.SetErr(c.err)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w\nSee '%s --help'.", err, cmd.CommandPath())
	})
	f := root.PersistentFlags()
	f.StringVarP(&c.host, "host", "H", "", "managers to talk to, separated by commas: unix:///path or tcp://HOST:PORT; when one is down the next answers (default $"+client.HostEnv+", else "+client.DefaultHost+")")
	f.StringVar(&c.tlsDir, "tls-dir", "", "directory holding ca.crt, client.crt and client.key for tcp:// hosts (default $"+client.TLSDirEnv+", else ~/.warren/tls); the managers learnt are kept in "+client.ManagersFileName+" beside it")
	f.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(newServiceCmd(c), newNodeCmd(c), newClusterCmd(c), newImageCmd(c), newVersionCmd(c), newLogsCmd(c), newLogDriverCmd(c), newExecCmd(c), newNetworkCmd(c))
	return root
}

func (c *cli) setupLogging() error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		return fmt.Errorf("invalid --log-level %q: use debug, info, warn or error", c.logLevel)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(c.err, &slog.HandlerOptions{Level: level})))
	return nil
}

// args checks the count of positional arguments, naming them in the error.
func args(min, max int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) >= min && (max < 0 || len(a) <= max) {
			return nil
		}
		var need string
		switch {
		case min == max:
			need = fmt.Sprintf("exactly %d %s", min, plural(min, "argument"))
		case max < 0:
			need = fmt.Sprintf("at least %d %s", min, plural(min, "argument"))
		default:
			need = fmt.Sprintf("%d to %d arguments", min, max)
		}
		return fmt.Errorf("%q requires %s (%s), not %d\nSee '%s --help'.", cmd.CommandPath(), need, names, len(a), cmd.CommandPath())
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// isTerminal reports whether w is a terminal, where progress is redrawn in
// place rather than printed line by line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// shortID is the 12-character form of an ID that tables show.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// joinNonEmpty joins the non-empty parts.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
