package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

// serviceRow is one line of `service ls`, and what its templates see.
type serviceRow struct {
	ID, Name, Mode, Replicas, Image, VIP, Ports, Updated string
}

func newServiceListCmd(c *cli) *cobra.Command {
	var f string
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List services",
		Args:    args(0, 0, "none"),
		RunE:    func(cmd *cobra.Command, _ []string) error { return c.listServices(cmd, format(f)) },
	}
	cmd.Flags().StringVar(&f, "format", "", "json, or a Go template over ID, Name, Mode, Replicas, Image, Updated")
	return cmd
}

func (c *cli) listServices(cmd *cobra.Command, f format) error {
	if err := f.check(); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	resp, err := cl.ListServices(cmd.Context(), &api.ListServicesRequest{})
	if err != nil {
		return err
	}
	services := resp.GetServices()
	sort.Slice(services, func(i, j int) bool { return services[i].GetSpec().GetName() < services[j].GetSpec().GetName() })
	l := listing{header: []string{"ID", "NAME", "MODE", "REPLICAS", "IMAGE", "VIP", "PORTS", "UPDATED"}}
	for _, s := range services {
		mode := "replicated"
		if s.GetSpec().GetGlobal() != nil {
			mode = "global"
		}
		r := serviceRow{
			ID: shortID(s.GetId()), Name: s.GetSpec().GetName(), Mode: mode,
			Replicas: fmt.Sprintf("%d/%d", resp.GetRunningTasks()[s.GetId()], resp.GetDesiredTasks()[s.GetId()]),
			Image:    s.GetSpec().GetTask().GetContainer().GetImage(),
			VIP:      s.GetEndpoint().GetVip(),
			Ports:    formatPorts(s.GetEndpoint().GetPorts()),
			Updated:  c.ago(s.GetMeta().GetUpdatedAt()),
		}
		l.add(r, s, r.ID, r.Name, r.Mode, r.Replicas, r.Image, r.VIP, r.Ports, r.Updated)
	}
	return writeListing(c.out, f, l)
}

func newServiceInspectCmd(c *cli) *cobra.Command {
	var f string
	cmd := &cobra.Command{
		Use:   "inspect SERVICE...",
		Short: "Show services in detail (JSON by default)",
		Args:  args(1, -1, "SERVICE..."),
		RunE:  func(cmd *cobra.Command, a []string) error { return c.inspectServices(cmd, format(f), a) },
	}
	cmd.Flags().StringVar(&f, "format", "", "json (the default), or a Go template over the API's Service")
	return cmd
}

// inspectServices prints the services it finds and then fails for the
// others, as docker inspect does.
func (c *cli) inspectServices(cmd *cobra.Command, f format, refs []string) error {
	if err := f.check(); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var found []proto.Message
	var errs []error
	for _, ref := range refs {
		resp, err := cl.GetService(cmd.Context(), &api.GetServiceRequest{Service: ref})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		found = append(found, resp.GetService())
	}
	if len(found) > 0 || len(errs) == 0 {
		if err := writeObjects(c.out, f, found); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// formatPorts is "*:8080->80/tcp, *:53->53/udp" as `docker service ls` shows.
func formatPorts(ports []*api.PortConfig) string {
	out := make([]string, len(ports))
	for i, p := range ports {
		out[i] = "*:" + spec.FormatPort(p)
	}
	return strings.Join(out, ", ")
}
