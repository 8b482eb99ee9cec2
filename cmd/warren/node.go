package main

import (
	"errors"
	"fmt"
	"sort"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// nodeRow is one line of `node ls`, and what its templates see.
type nodeRow struct {
	ID, Hostname, Role, Status, Availability, ManagerStatus, Address string
	Tasks                                                            int
}

func newNodeCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "List, inspect, update and remove the cluster's nodes", Args: cobra.NoArgs}
	var lsFormat, inspectFormat string
	var pretty bool
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List nodes",
		Args:    args(0, 0, "none"),
		RunE:    func(cmd *cobra.Command, _ []string) error { return c.listNodes(cmd, format(lsFormat)) },
	}
	ls.Flags().StringVar(&lsFormat, "format", "", "json, or a Go template over ID, Hostname, Role, Status, Availability, ManagerStatus, Address, Tasks")
	inspect := &cobra.Command{
		Use:   "inspect NODE...",
		Short: "Show nodes in detail (JSON by default)",
		Args:  args(1, -1, "NODE..."),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.inspectNodes(cmd, format(inspectFormat), pretty, a)
		},
	}
	inspect.Flags().StringVar(&inspectFormat, "format", "", "json (the default), or a Go template over the API's Node")
	inspect.Flags().BoolVar(&pretty, "pretty", false, "print a readable summary instead of JSON")
	cmd.AddCommand(ls, inspect, newNodeUpdateCmd(c), newNodeRemoveCmd(c),
		newNodeRoleCmd(c, promotion), newNodeRoleCmd(c, demotion))
	return cmd
}

func (c *cli) listNodes(cmd *cobra.Command, f format) error {
	if err := f.check(); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	resp, err := cl.ListNodes(cmd.Context(), &api.ListNodesRequest{})
	if err != nil {
		return err
	}
	tasks, err := cl.ListTasks(cmd.Context(), &api.ListTasksRequest{})
	if err != nil {
		return err
	}
	info, err := cl.GetClusterInfo(cmd.Context(), &api.GetClusterInfoRequest{})
	if err != nil {
		return err
	}
	raft := info.GetRaft()
	running := map[string]int{}
	for _, t := range tasks.GetTasks() {
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
			running[t.GetNodeId()]++
		}
	}
	nodes := resp.GetNodes()
	sort.Slice(nodes, func(i, j int) bool {
		return nodes[i].GetDescription().GetHostname() < nodes[j].GetDescription().GetHostname()
	})
	l := listing{header: []string{"ID", "HOSTNAME", "ROLE", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ADDRESS", "TASKS"}}
	for _, n := range nodes {
		r := nodeRow{
			ID: shortID(n.GetId()), Hostname: n.GetDescription().GetHostname(),
			Role:          roleWord(n),
			Status:        enumName(n.GetStatus().GetState(), "NODE_STATE_"),
			Availability:  enumName(n.GetSpec().GetAvailability(), "NODE_AVAILABILITY_"),
			ManagerStatus: managerStatus(n, raft),
			Address:       n.GetStatus().GetAddr(), Tasks: running[n.GetId()],
		}
		l.add(r, n, r.ID, r.Hostname, r.Role, r.Status, r.Availability, r.ManagerStatus, r.Address, fmt.Sprint(r.Tasks))
	}
	return writeListing(c.out, f, l)
}

// managerStatus is what `node ls` says of a manager, as the answering
// manager sees it: "Leader", "Reachable" or "Unreachable"; nothing for a
// worker, or for a manager that is not (yet) a Raft member.
func managerStatus(n *api.Node, raft *api.RaftInfo) string {
	if s := raftServer(raft, n.GetId()); s != nil && n.IsManager() {
		return raftServerStatus(s, raft)
	}
	return ""
}

// raftServer is Raft member id, nil when it is none.
func raftServer(raft *api.RaftInfo, id string) *api.RaftServer {
	for _, s := range raft.GetServers() {
		if s.GetId() == id {
			return s
		}
	}
	return nil
}

// roleWord is the node's role, and the one it is moving to during a
// promotion or demotion: "worker→manager".
func roleWord(n *api.Node) string {
	now := enumName(n.CurrentRole(), "NODE_ROLE_")
	if asked := n.GetSpec().GetRole(); asked != n.CurrentRole() {
		return now + "→" + enumName(asked, "NODE_ROLE_")
	}
	return now
}

// raftServerStatus is "Leader", "Reachable" or "Unreachable".
func raftServerStatus(s *api.RaftServer, raft *api.RaftInfo) string {
	switch {
	case s.GetLeader() || (s.GetId() != "" && s.GetId() == raft.GetLeaderId()):
		return "Leader"
	case s.GetReachable():
		return "Reachable"
	}
	return "Unreachable"
}

func (c *cli) inspectNodes(cmd *cobra.Command, f format, pretty bool, refs []string) error {
	if err := f.check(); err != nil {
		return err
	}
	if pretty && f != "" {
		return fmt.Errorf("--pretty and --format cannot be used together")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var found []proto.Message
	var errs []error
	for _, ref := range refs {
		resp, err := cl.GetNode(cmd.Context(), &api.GetNodeRequest{Node: ref})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, resp.GetNode())
	}
	if pretty {
		c.writeNodesPretty(found)
	} else if len(found) > 0 || len(errs) == 0 {
		if err := writeObjects(c.out, f, found); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}
