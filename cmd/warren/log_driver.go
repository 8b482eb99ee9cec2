package main

import (
	"github.com/spf13/cobra"

	"github.com/warren-project/warren/internal/logfile"
)

// newLogDriverCmd is the containers' log driver: the containerd shim runs
// `warren log-driver CONFIG` next to each container, with its stdout and
// stderr on fds 3 and 4, to write them as timestamped records to the
// task's rotated log. Not for people: hidden.
func newLogDriverCmd(c *cli) *cobra.Command {
	return &cobra.Command{
		Use:    logfile.DriverCommand + " CONFIG",
		Short:  "Write a container's output to its log (run by the containerd shim)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		// No logging setup and no client: the shim gives no terminal.
		PersistentPreRunE: func(*cobra.Command, []string) error { return nil },
		RunE: func(_ *cobra.Command, a []string) error {
			if code := logfile.DriverMain(a[0], c.err); code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
}
