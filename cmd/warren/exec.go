package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

// execOpts are the flags of `exec`.
type execOpts struct {
	interactive, tty bool
	env              []string
}

func newExecCmd(c *cli) *cobra.Command {
	o := &execOpts{}
	cmd := &cobra.Command{
		Use:   "exec [-i] [-t] TASK|SERVICE -- COMMAND [ARG...]",
		Short: "Run a command in a running task's container",
		Long: `Run a command in a running task's container, wherever it runs, and exit
with the command's exit code. TASK is a task ID or a unique prefix; a SERVICE
name picks its running task with the lowest slot. With -i the command reads
this command's stdin; with -t it runs in a terminal (use both for a shell).`,
		Args: args(2, -1, "TASK|SERVICE COMMAND"),
		RunE: func(cmd *cobra.Command, a []string) error {
			command := a[1:]
			// Flag parsing stops at the task, so a "--" after it stays.
			if command[0] == "--" {
				command = command[1:]
			}
			if len(command) == 0 {
				return fmt.Errorf("%q requires a COMMAND after the task\nSee '%s --help'.", cmd.CommandPath(), cmd.CommandPath())
			}
			return c.exec(cmd, a[0], command, o)
		},
	}
	// Flags after the task belong to the command: exec web ls -l.
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.BoolVarP(&o.interactive, "interactive", "i", false, "pass stdin to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "run the command in a terminal (this one goes raw meanwhile)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable (KEY=VALUE) for the command")
	return cmd
}

// exec runs the command and ends with its exit code.
func (c *cli) exec(cmd *cobra.Command, target string, command []string, o *execOpts) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM)
	defer stop()
	start := &api.ExecStart{Task: target, Command: command, Tty: o.tty, Env: o.env}
	opts := client.ExecOptions{Stdout: c.out, Stderr: c.err}
	if o.interactive {
		opts.Stdin = c.in
	}
	if o.tty {
		restore, err := c.startTerminal(ctx, start, &opts)
		if err != nil {
			return err
		}
		defer restore()
	} else if !o.interactive {
		// Without -i, Ctrl-C ends the command; with it, it is input.
		var stopInt context.CancelFunc
		ctx, stopInt = signal.NotifyContext(ctx, os.Interrupt)
		defer stopInt()
	}
	code, err := cl.Exec(ctx, start, opts)
	if errors.Is(err, context.Canceled) {
		return &exitError{code: 130}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}
