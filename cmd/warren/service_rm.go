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
)

func newServiceRemoveCmd(c *cli) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:     "rm SERVICE...",
		Aliases: []string{"delete", "remove"},
		Short:   "Remove services, and wait until their tasks are gone",
		Args:    args(1, -1, "SERVICE..."),
		RunE:    func(cmd *cobra.Command, a []string) error { return c.removeServices(cmd, a, detach) },
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return at once instead of waiting for the tasks to stop")
	return cmd
}

func (c *cli) removeServices(cmd *cobra.Command, refs []string, detach bool) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var errs []error
	removed := map[string]string{} // ID -> name
	var order []string
	for _, ref := range refs {
		got, err := cl.GetService(cmd.Context(), &api.GetServiceRequest{Service: ref})
		if err == nil {
			_, err = cl.RemoveService(cmd.Context(), &api.RemoveServiceRequest{Service: got.GetService().GetId()})
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(c.out, ref)
		removed[got.GetService().GetId()] = got.GetService().GetSpec().GetName()
		order = append(order, got.GetService().GetId())
	}
	if !detach {
		if err := c.waitRemoved(cmd, order, removed); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// waitRemoved waits until the removed services' tasks are gone; Ctrl-C
// ends the wait (the removal goes on) with exit code 130.
func (c *cli) waitRemoved(cmd *cobra.Command, ids []string, names map[string]string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, id := range ids {
		err := cl.WaitForServiceRemoved(ctx, id)
		if errors.Is(err, context.Canceled) {
			return &exitError{code: 130, msg: fmt.Sprintf("service %s is removed; its tasks are still stopping", names[id])}
		}
		if err != nil {
			return err
		}
	}
	return nil
}
