package main

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/api"
)

func newClusterCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Run a cluster and see its state", Args: cobra.NoArgs}
	var f string
	info := &cobra.Command{
		Use:   "info",
		Short: "Show the cluster: its ID, Raft state, counts and CA",
		Args:  args(0, 0, "none"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.clusterInfo(cmd, format(f)) },
	}
	info.Flags().StringVar(&f, "format", "", "json, or a Go template over the API's GetClusterInfoResponse")
	cmd.AddCommand(newClusterInitCmd(), newClusterJoinCmd(), info, newJoinTokenCmd(c), newClusterCACmd(c),
		newClusterBackupCmd(c), newClusterRestoreCmd(c))
	return cmd
}

func (c *cli) clusterInfo(cmd *cobra.Command, f format) error {
	if err := f.check(); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	resp, err := cl.GetClusterInfo(cmd.Context(), &api.GetClusterInfoRequest{})
	if err != nil {
		return err
	}
	switch {
	case f == "json":
		return writeJSON(c.out, resp)
	case f.isTemplate():
		return writeTemplate(c.out, f, []any{resp})
	}
	return c.writeClusterInfo(resp)
}

func (c *cli) writeClusterInfo(r *api.GetClusterInfoResponse) error {
	tw := tabwriter.NewWriter(c.out, 0, 4, 1, ' ', 0)
	line := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	raft := r.GetRaft()
	line("Cluster ID", r.GetCluster().GetId())
	line("Name", r.GetCluster().GetName())
	line("Manager node", r.GetManagerNodeId())
	if r.GetStartedAt() != nil {
		line("Manager started", c.ago(r.GetStartedAt()))
	}
	line("Raft state", raft.GetState())
	line("Raft term", raft.GetTerm())
	line("Raft indexes", fmt.Sprintf("commit %d, applied %d, last snapshot %d", raft.GetCommitIndex(), raft.GetAppliedIndex(), raft.GetLastSnapshotIndex()))
	line("Raft leader", joinNonEmpty(" at ", raft.GetLeaderId(), raft.GetLeaderAddr()))
	line("Nodes", r.GetNodes())
	line("Services", r.GetServices())
	line("Tasks", r.GetTasks())
	line("CA fingerprint", r.GetCluster().GetCaFingerprint())
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(raft.GetServers()) == 0 {
		return nil
	}
	fmt.Fprintln(c.out, "\nManagers:")
	return c.writeManagers(raft)
}

// writeManagers is the table of Raft servers, as the answering manager
// sees them: "Reachable" when it heard from one lately.
func (c *cli) writeManagers(raft *api.RaftInfo) error {
	tw := tabwriter.NewWriter(c.out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "ID\tAPI ADDRESS\tRAFT ADDRESS\tSTATUS\tLAST CONTACT")
	for _, s := range raft.GetServers() {
		status := raftServerStatus(s, raft)
		if sf := s.GetSuffrage(); sf != "" && sf != "Voter" {
			status += " (" + strings.ToLower(sf) + ")"
		}
		contact := "never"
		if s.GetLastContact() != nil {
			contact = c.ago(s.GetLastContact())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", shortID(s.GetId()), dash(s.GetApiAddr()), s.GetAddr(), status, contact)
	}
	return tw.Flush()
}
