package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

func newNetworkCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Show the cluster's overlay network", Args: cobra.NoArgs}
	var f string
	inspect := &cobra.Command{
		Use:   "inspect",
		Short: "Show the overlay: address plan, each node's block and WireGuard peers, service VIPs and backends",
		Args:  args(0, 0, "none"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := format(f).check(); err != nil {
				return err
			}
			cl, err := c.client()
			if err != nil {
				return err
			}
			resp, err := cl.InspectNetwork(cmd.Context(), &api.InspectNetworkRequest{})
			if err != nil {
				return err
			}
			if f != "" {
				return writeObjects(c.out, format(f), []proto.Message{resp})
			}
			return c.writeNetwork(c.out, resp)
		},
	}
	inspect.Flags().StringVar(&f, "format", "", "json, or a Go template over the API's InspectNetworkResponse")
	cmd.AddCommand(inspect)
	return cmd
}

// writeNetwork prints the overlay for a person: the plan, the mesh as each
// node sees it (a row per peer), then the services.
func (c *cli) writeNetwork(w io.Writer, r *api.InspectNetworkResponse) error {
	var buf bytes.Buffer
	cfg := r.GetConfig()
	fmt.Fprintf(&buf, "Subnet: %s (a /%d per node)   VIP pool: %s\n\n", cfg.GetSubnet(), cfg.GetNodePrefixLength(), cfg.GetVipPool())
	names := map[string]string{}
	for _, n := range r.GetNodes() {
		names[n.GetNodeId()] = n.GetHostname()
	}
	tw := tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tBLOCK\tENDPOINT\tPEER\tHANDSHAKE\tRX\tTX")
	for _, n := range r.GetNodes() {
		lead := fmt.Sprintf("%s\t%s\t%s\t%s", n.GetHostname(), strings.ToLower(enumName(n.GetState(), "NODE_STATE_")), dash(n.GetBlock()), dash(n.GetWireguardEndpoint()))
		if n.GetError() != "" {
			fmt.Fprintf(tw, "%s\terror: %s\t\t\t\n", lead, n.GetError())
			lead = "\t\t\t"
		}
		if len(n.GetPeers()) == 0 {
			fmt.Fprintf(tw, "%s\t-\t\t\t\n", lead)
			continue
		}
		for _, p := range n.GetPeers() {
			hs := "never"
			if p.GetLastHandshake() != nil {
				hs = c.ago(p.GetLastHandshake())
			}
			peer := names[p.GetNodeId()]
			if peer == "" {
				peer = dash(p.GetNodeId())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", lead, peer, hs, spec.FormatMemory(int64(p.GetRxBytes())), spec.FormatMemory(int64(p.GetTxBytes())))
			lead = "\t\t\t"
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(&buf)
	tw = tabwriter.NewWriter(&buf, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tVIP\tPORTS\tBACKENDS")
	for _, s := range r.GetServices() {
		var backends []string
		for _, b := range s.GetBackends() {
			backends = append(backends, b.GetAddress())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.GetName(), dash(s.GetVip()), dash(formatPorts(s.GetPorts())), dash(strings.Join(backends, " ")))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
