package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/api"
)

func newJoinTokenCmd(c *cli) *cobra.Command {
	var quiet, rotate bool
	cmd := &cobra.Command{
		Use:   "join-token worker|manager",
		Short: "Print the token a node joins the cluster with, and the command to run there",
		Long: `Prints the join token of a role and the command a new node runs to join.
The token names the role and pins this cluster's CA, so a joining node refuses
a manager presenting any other CA. --rotate replaces the token's secret: the old
token no longer admits new nodes, and nodes already in keep working.`,
		Args: args(1, 1, "worker or manager"),
		RunE: func(cmd *cobra.Command, a []string) error { return c.joinToken(cmd, a[0], quiet, rotate) },
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the token only")
	cmd.Flags().BoolVar(&rotate, "rotate", false, "replace the token's secret; the old token stops admitting new nodes")
	return cmd
}

var joinRoles = map[string]api.NodeRole{"worker": api.NodeRole_NODE_ROLE_WORKER, "manager": api.NodeRole_NODE_ROLE_MANAGER}

func (c *cli) joinToken(cmd *cobra.Command, roleArg string, quiet, rotate bool) error {
	role, ok := joinRoles[roleArg]
	if !ok {
		return fmt.Errorf("invalid role %q: use worker or manager", roleArg)
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	resp, err := cl.GetJoinToken(cmd.Context(), &api.GetJoinTokenRequest{Role: role, Rotate: rotate})
	if err != nil {
		return err
	}
	if quiet {
		fmt.Fprintln(c.out, resp.GetToken())
		return nil
	}
	if rotate {
		fmt.Fprintf(c.out, "Successfully rotated %s join token.\n\n", roleArg)
	}
	addr := "MANAGER_ADDR"
	if addrs := resp.GetManagerAddrs(); len(addrs) > 0 {
		addr = addrs[0]
	}
	fmt.Fprintf(c.out, "To add a %s to this cluster, run the following command:\n\n    warren cluster join --token %s %s\n", roleArg, resp.GetToken(), addr)
	return nil
}
