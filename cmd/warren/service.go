package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

func newServiceCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Create, list, change and remove services",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(
		newServiceCreateCmd(c),
		newServiceListCmd(c),
		newServiceInspectCmd(c),
		newServicePsCmd(c),
		newServiceLogsCmd(c),
		newServiceScaleCmd(c),
		newServiceUpdateCmd(c),
		newServiceRemoveCmd(c),
	)
	return cmd
}

func newServiceCreateCmd(c *cli) *cobra.Command {
	o := &serviceOpts{}
	cmd := &cobra.Command{
		Use:   "create NAME --image IMAGE [flags] [-- ARG...]",
		Short: "Create a service and wait until its tasks run",
		Long: `Create a service and wait until its tasks run.

Arguments after NAME replace the image's command (its CMD); put them after
"--" when they start with a dash: warren service create web --image busybox -- sh -c 'httpd -f'`,
		Args: args(1, -1, "NAME [ARG...]"),
		RunE: func(cmd *cobra.Command, a []string) error { return c.createService(cmd, o, a[0], a[1:]) },
	}
	o.addFlags(cmd.Flags())
	return cmd
}

func (c *cli) createService(cmd *cobra.Command, o *serviceOpts, name string, args []string) error {
	f := format(o.format)
	if err := f.check(); err != nil {
		return err
	}
	if err := spec.ValidateServiceName(name); err != nil {
		return err
	}
	if o.image == "" {
		return fmt.Errorf("--image is required: name the image to run, such as --image nginx:1.27")
	}
	s, err := o.spec(cmd.Flags(), name, args)
	if err != nil {
		return err
	}
	// Check here so that bad input never reaches the manager.
	if err := spec.ValidateServiceSpec(s); err != nil {
		return err
	}
	if err := o.auth.read(c.in); err != nil {
		return err
	}
	auth, err := o.auth.forImage(cmd.Context(), o.image)
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	resp, err := cl.CreateService(cmd.Context(), &api.CreateServiceRequest{Spec: s, RegistryAuth: auth})
	if err != nil {
		return err
	}
	for _, w := range resp.GetWarnings() {
		fmt.Fprintf(c.err, "Warning: %s\n", w)
	}
	svc := resp.GetService()
	progress, err := c.printCreated(f, svc)
	if err != nil || o.detach {
		return err
	}
	return c.waitForService(cmd, svc.GetId(), name, progress)
}

// printCreated prints the new service's ID (like docker), or the service
// itself with --format; it returns where progress goes: stdout, unless
// stdout carries JSON or a template's output.
func (c *cli) printCreated(f format, svc *api.Service) (io.Writer, error) {
	if f == "" {
		_, err := fmt.Fprintln(c.out, svc.GetId())
		return c.out, err
	}
	if f == "json" {
		return c.err, writeJSON(c.out, svc)
	}
	return c.err, writeObjects(c.out, f, []proto.Message{svc})
}
