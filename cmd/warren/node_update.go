package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

type nodeUpdateOpts struct {
	availability      string
	labelAdd, labelRm []string
}

func newNodeUpdateCmd(c *cli) *cobra.Command {
	o := &nodeUpdateOpts{}
	cmd := &cobra.Command{
		Use:   "update [--availability active|pause|drain] [--label-add KEY=VALUE] [--label-rm KEY] NODE",
		Short: "Change a node's availability or labels",
		Long: `Changes a node's availability or labels. "drain" moves the node's tasks to
other nodes and gives it no new ones; "pause" keeps its tasks but gives it no new
ones; "active" makes it schedulable again. Labels are what placement constraints
such as node.labels.zone==edge match.`,
		Args: args(1, 1, "NODE"),
		RunE: func(cmd *cobra.Command, a []string) error { return c.updateNode(cmd, a[0], o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.availability, "availability", "", "active, pause or drain")
	f.StringArrayVar(&o.labelAdd, "label-add", nil, "add or replace a label: KEY=VALUE, or KEY for an empty value (repeatable)")
	f.StringArrayVar(&o.labelRm, "label-rm", nil, "remove a label by KEY (repeatable)")
	return cmd
}

var availabilities = map[string]api.NodeAvailability{
	"active": api.NodeAvailability_NODE_AVAILABILITY_ACTIVE,
	"pause":  api.NodeAvailability_NODE_AVAILABILITY_PAUSE,
	"drain":  api.NodeAvailability_NODE_AVAILABILITY_DRAIN,
}

func (c *cli) updateNode(cmd *cobra.Command, ref string, o *nodeUpdateOpts) error {
	if err := o.check(cmd); err != nil {
		return err
	}
	if err := c.modifyNode(cmd.Context(), ref, o.apply); err != nil {
		return err
	}
	fmt.Fprintln(c.out, ref)
	return nil
}

// check refuses bad flags before anything is sent.
func (o *nodeUpdateOpts) check(cmd *cobra.Command) error {
	if !cmd.Flags().Changed("availability") && len(o.labelAdd) == 0 && len(o.labelRm) == 0 {
		return fmt.Errorf("nothing to update: give --availability, --label-add or --label-rm\nSee '%s --help'.", cmd.CommandPath())
	}
	if _, ok := availabilities[o.availability]; cmd.Flags().Changed("availability") && !ok {
		return fmt.Errorf("invalid --availability %q: use active, pause or drain", o.availability)
	}
	for _, kv := range o.labelAdd {
		if k, _, _ := strings.Cut(kv, "="); strings.TrimSpace(k) == "" {
			return fmt.Errorf("invalid --label-add %q: write KEY=VALUE", kv)
		}
	}
	for _, k := range o.labelRm {
		if strings.TrimSpace(k) == "" || strings.Contains(k, "=") {
			return fmt.Errorf("invalid --label-rm %q: give the label's KEY only", k)
		}
	}
	return nil
}

// apply changes a node's spec as the flags say. Removing a label the node
// does not have is an error, as in Docker: it is usually a typo.
func (o *nodeUpdateOpts) apply(sp *api.NodeSpec) error {
	if o.availability != "" {
		sp.Availability = availabilities[o.availability]
	}
	for _, k := range o.labelRm {
		if _, ok := sp.Labels[k]; !ok {
			return fmt.Errorf("node has no label %q to remove", k)
		}
		delete(sp.Labels, k)
	}
	for _, kv := range o.labelAdd {
		if sp.Labels == nil {
			sp.Labels = map[string]string{}
		}
		k, v, _ := strings.Cut(kv, "=")
		sp.Labels[k] = v
	}
	return nil
}

// modifyNode reads a node, changes its spec and writes it back based on
// the version read; if the node changed in between (a status report, say),
// it reads and changes it once more.
func (c *cli) modifyNode(ctx context.Context, ref string, change func(*api.NodeSpec) error) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		got, err := cl.GetNode(ctx, &api.GetNodeRequest{Node: ref})
		if err != nil {
			return err
		}
		n := got.GetNode()
		sp := n.GetSpec()
		if sp == nil {
			sp = &api.NodeSpec{}
		}
		if err := change(sp); err != nil {
			return fmt.Errorf("node %s: %w", ref, err)
		}
		_, err = cl.UpdateNode(ctx, &api.UpdateNodeRequest{Node: n.GetId(), NodeVersion: n.GetMeta().GetVersion(), Spec: sp})
		if client.Code(err) == codes.FailedPrecondition && attempt == 0 {
			continue
		}
		return err
	}
}

func newNodeRemoveCmd(c *cli) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [--force] NODE...",
		Aliases: []string{"remove"},
		Short:   "Remove nodes from the cluster",
		Long: `Forgets nodes: their tasks are started elsewhere and their certificates stop
working. A node that is still up is refused unless --force: drain it and stop
warren there first. Managers cannot be removed.`,
		Args: args(1, -1, "NODE..."),
		RunE: func(cmd *cobra.Command, a []string) error { return c.removeNodes(cmd, a, force) },
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove a node even if it is up")
	return cmd
}

func (c *cli) removeNodes(cmd *cobra.Command, refs []string, force bool) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var errs []error
	for _, ref := range refs {
		if _, err := cl.RemoveNode(cmd.Context(), &api.RemoveNodeRequest{Node: ref, Force: force}); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(c.out, ref)
	}
	return errors.Join(errs...)
}
