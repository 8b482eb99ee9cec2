package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

// roleChange is `node promote` or `node demote`.
type roleChange struct {
	verb, done string // "promote", "a manager"
	role       api.NodeRole
}

var (
	promotion = roleChange{"promote", "a manager", api.NodeRole_NODE_ROLE_MANAGER}
	demotion  = roleChange{"demote", "a worker", api.NodeRole_NODE_ROLE_WORKER}
)

func newNodeRoleCmd(c *cli, rc roleChange) *cobra.Command {
	var detach bool
	long := `Makes workers managers. The node gets a manager certificate and the cluster's
keys, becomes a Raft voter and serves the API; its containers run on. Keep an odd
number of managers: 3 survive the loss of one, 5 of two.`
	if rc.role == api.NodeRole_NODE_ROLE_WORKER {
		long = `Makes managers workers. The node leaves Raft first, then goes on as a worker;
its containers run on. Refused when it would leave no manager, or too few
reachable managers for the rest to keep quorum. A leader hands leadership over
before it leaves.`
	}
	cmd := &cobra.Command{
		Use:   rc.verb + " [--detach] NODE...",
		Short: fmt.Sprintf("Make nodes %ss", map[api.NodeRole]string{api.NodeRole_NODE_ROLE_MANAGER: "manager", api.NodeRole_NODE_ROLE_WORKER: "worker"}[rc.role]),
		Long:  long + "\n\nWaits until each node has its new role unless --detach.",
		Args:  args(1, -1, "NODE..."),
		RunE:  func(cmd *cobra.Command, a []string) error { return c.changeRoles(cmd, rc, a, detach) },
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return once the change is asked for, without waiting for it")
	return cmd
}

func (c *cli) changeRoles(cmd *cobra.Command, rc roleChange, refs []string, detach bool) error {
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var errs []error
	for _, ref := range refs {
		if err := c.changeRole(ctx, cmd, rc, ref, detach); err != nil {
			if errors.Is(err, context.Canceled) {
				return &exitError{code: 130, msg: fmt.Sprintf("node %s is still changing role: see \"%s node ls\"", ref, cmd.Root().Name())}
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *cli) changeRole(ctx context.Context, cmd *cobra.Command, rc roleChange, ref string, detach bool) error {
	already := false
	err := c.modifyNode(ctx, ref, func(sp *api.NodeSpec) error {
		already = sp.GetRole() == rc.role
		sp.Role = rc.role
		return nil
	})
	if err != nil {
		return err
	}
	if already {
		fmt.Fprintf(c.out, "node %s is already %s\n", ref, rc.done)
		if detach {
			return nil
		}
	}
	if detach {
		fmt.Fprintf(c.out, "node %s: %s asked for; see \"%s node ls\"\n", ref, rc.verb, cmd.Root().Name())
		return nil
	}
	return c.waitForRole(ctx, rc, ref)
}

// waitForRole follows a node to its new role: a promoted node is done once
// it is a reachable Raft voter, a demoted one once it has left Raft and
// runs as a worker. Each step is printed as it is seen.
func (c *cli) waitForRole(ctx context.Context, rc roleChange, ref string) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	last := ""
	say := func(step string) {
		if step != last {
			fmt.Fprintf(c.out, "node %s: %s\n", ref, step)
			last = step
		}
	}
	answering := false // the node demoted is the manager answering
	for {
		n, info, err := nodeAndRaft(ctx, cl, ref)
		if err != nil {
			if answering && rc.role == api.NodeRole_NODE_ROLE_WORKER && ctx.Err() == nil {
				say("this manager stopped answering as it became a worker: ask another manager (`warren -H tcp://OTHER:2377 node ls`)")
				return nil
			}
			return err
		}
		answering = info.GetManagerNodeId() == n.GetId()
		step, done := roleStep(n, info.GetRaft(), rc)
		say(step)
		if done {
			return nil
		}
		if n.GetStatus().GetState() == api.NodeState_NODE_STATE_DOWN && rc.role == api.NodeRole_NODE_ROLE_MANAGER {
			say("the node is down: it becomes a manager when it comes back")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// nodeAndRaft reads a node and the Raft membership as one manager sees them.
func nodeAndRaft(ctx context.Context, cl *client.Client, ref string) (*api.Node, *api.GetClusterInfoResponse, error) {
	got, err := cl.GetNode(ctx, &api.GetNodeRequest{Node: ref})
	if err != nil {
		return nil, nil, err
	}
	info, err := cl.GetClusterInfo(ctx, &api.GetClusterInfoRequest{})
	if err != nil {
		return nil, nil, err
	}
	return got.GetNode(), info, nil
}

// roleStep says where a role change stands, and whether it is over.
func roleStep(n *api.Node, raft *api.RaftInfo, rc roleChange) (string, bool) {
	voter := raftServer(raft, n.GetId())
	switch {
	case n.GetSpec().GetRole() != rc.role:
		return "the role asked for changed again: " + enumName(n.GetSpec().GetRole(), "NODE_ROLE_"), true
	case rc.role == api.NodeRole_NODE_ROLE_MANAGER && !n.IsManager():
		return "waiting for the leader to promote it", false
	case rc.role == api.NodeRole_NODE_ROLE_MANAGER && voter == nil:
		return "promoted; waiting for it to restart as a manager and join Raft", false
	case rc.role == api.NodeRole_NODE_ROLE_MANAGER && !voter.GetReachable():
		return "a Raft voter; waiting for it to answer", false
	case rc.role == api.NodeRole_NODE_ROLE_MANAGER:
		return "now a manager (" + raftServerStatus(voter, raft) + ")", true
	case voter != nil || n.IsManager():
		return "waiting for it to leave Raft", false
	}
	return "now a worker", true
}
