package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

// psRow is one line of `service ps`, and what its templates see.
type psRow struct {
	ID, Name, Image, Node, Address, DesiredState, CurrentState, Error string
	Restarts                                                          uint32
	// Health is "starting", "healthy" or "unhealthy" for a task with a
	// health check, else empty.
	Health string
}

func newServicePsCmd(c *cli) *cobra.Command {
	var f string
	var noTrunc bool
	cmd := &cobra.Command{
		Use:   "ps SERVICE",
		Short: "List a service's tasks, with their history",
		Args:  args(1, 1, "SERVICE"),
		RunE:  func(cmd *cobra.Command, a []string) error { return c.servicePs(cmd, a[0], format(f), noTrunc) },
	}
	cmd.Flags().StringVar(&f, "format", "", "json, or a Go template over ID, Name, Image, Node, DesiredState, CurrentState, Restarts, Health, Error")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not shorten IDs and errors")
	return cmd
}

func (c *cli) servicePs(cmd *cobra.Command, ref string, f format, noTrunc bool) error {
	if err := f.check(); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	resp, err := cl.ListTasks(cmd.Context(), &api.ListTasksRequest{Service: ref})
	if err != nil {
		return err
	}
	hosts := c.hostnames(cmd.Context())
	l := listing{header: []string{"ID", "NAME", "IMAGE", "NODE", "ADDRESS", "DESIRED STATE", "CURRENT STATE", "RESTARTS", "ERROR"}}
	for _, g := range groupTasks(resp.GetTasks()) {
		for i, t := range g {
			r := c.psRow(t, hosts, noTrunc)
			if i > 0 {
				r.Name = ` \_ ` + r.Name
			}
			l.add(r, t, r.ID, r.Name, r.Image, r.Node, r.Address, r.DesiredState, r.CurrentState, fmt.Sprint(r.Restarts), r.Error)
		}
	}
	return writeListing(c.out, f, l)
}

func (c *cli) psRow(t *api.Task, hosts map[string]string, noTrunc bool) psRow {
	st := t.GetStatus()
	r := psRow{
		ID: t.GetId(), Name: taskName(t), Image: t.GetSpec().GetContainer().GetImage(), Address: taskAddress(t),
		DesiredState: stateTitle(t.GetDesiredState()),
		CurrentState: joinNonEmpty(" ", stateTitle(st.GetState()), lowerFirst(c.ago(st.GetTimestamp()))),
		Restarts:     st.GetRestartCount(), Error: st.GetErr(),
		Health: strings.TrimPrefix(healthNote(st.GetHealth()), "health: "),
	}
	// Health matters while the container runs; an ended task's error says why.
	if note := healthNote(st.GetHealth()); note != "" && st.GetState() <= api.TaskState_TASK_STATE_RUNNING {
		r.CurrentState += " (" + note + ")"
	}
	if t.GetNodeId() != "" {
		r.Node = hosts[t.GetNodeId()]
		if r.Node == "" {
			r.Node = t.GetNodeId()
		}
	}
	if !noTrunc {
		r.ID, r.Error = shortID(r.ID), truncate(r.Error, 40)
		if r.Node == t.GetNodeId() {
			r.Node = shortID(r.Node)
		}
	}
	return r
}

// taskName is "web.1" for a replica, "web.<node ID>" for a global task.
func taskName(t *api.Task) string {
	if t.GetSlot() > 0 {
		return fmt.Sprintf("%s.%d", t.GetServiceName(), t.GetSlot())
	}
	return fmt.Sprintf("%s.%s", t.GetServiceName(), t.GetNodeId())
}

// groupTasks groups tasks by slot (by node, for a global service), slots
// in order; in each group the current task (the newest one meant to run)
// comes first, then the history, newest first.
func groupTasks(tasks []*api.Task) [][]*api.Task {
	groups := map[string][]*api.Task{}
	var keys []string
	for _, t := range tasks {
		k := fmt.Sprintf("%020d/%s", t.GetSlot(), t.GetNodeId())
		if t.GetSlot() > 0 {
			k = fmt.Sprintf("%020d", t.GetSlot())
		}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], t)
	}
	sort.Strings(keys)
	out := make([][]*api.Task, 0, len(keys))
	for _, k := range keys {
		g := groups[k]
		sort.SliceStable(g, func(i, j int) bool { return before(g[i], g[j]) })
		out = append(out, g)
	}
	return out
}

// before orders a slot's tasks: meant-to-run first, then newest first.
func before(a, b *api.Task) bool {
	ra, rb := a.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING, b.GetDesiredState() == api.TaskState_TASK_STATE_RUNNING
	if ra != rb {
		return ra
	}
	ta, tb := a.GetMeta().GetCreatedAt().AsTime(), b.GetMeta().GetCreatedAt().AsTime()
	if !ta.Equal(tb) {
		return ta.After(tb)
	}
	return a.GetMeta().GetVersion() > b.GetMeta().GetVersion()
}

// taskAddress is a task's overlay address, or "host" on the host network.
func taskAddress(t *api.Task) string {
	if t.GetSpec().GetContainer().GetNetwork() == spec.NetworkHost {
		return "host"
	}
	return t.GetAddress()
}
