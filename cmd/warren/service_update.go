package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc/codes"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
	"github.com/warren-project/warren/pkg/client"
)

type updateOpts struct {
	image, args   string
	envAdd, envRm []string
	publishAdd    []string
	publishRm     []string
	replicas      uint64
	resources     resourceOpts
	health        healthOpts
	logs          logOpts
	auth          registryAuthOpts
	detach        bool
}

func newServiceUpdateCmd(c *cli) *cobra.Command {
	o := &updateOpts{}
	cmd := &cobra.Command{
		Use:   "update SERVICE [flags]",
		Short: "Change a service and wait until its tasks run the change",
		Args:  args(1, 1, "SERVICE"),
		RunE:  func(cmd *cobra.Command, a []string) error { return c.updateService(cmd, a[0], o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.image, "image", "", "new image")
	f.StringArrayVar(&o.envAdd, "env-add", nil, "add or replace an environment variable: KEY=VALUE (repeatable)")
	f.StringArrayVar(&o.envRm, "env-rm", nil, "remove an environment variable by KEY (repeatable)")
	f.Uint64Var(&o.replicas, "replicas", 0, "number of tasks")
	f.StringArrayVar(&o.publishAdd, "publish-add", nil, "publish a port, as --publish of create (repeatable)")
	f.StringArrayVar(&o.publishRm, "publish-rm", nil, "stop publishing a port: PUBLISHED[/PROTOCOL] (repeatable)")
	f.StringVar(&o.args, "args", "", "new arguments, replacing the image's CMD; split on whitespace")
	o.resources.addFlags(f)
	o.health.addFlags(f)
	o.logs.addFlags(f)
	o.auth.addFlags(f, true)
	f.BoolVarP(&o.detach, "detach", "d", false, "return at once instead of waiting for the service to converge")
	return cmd
}

func (c *cli) updateService(cmd *cobra.Command, ref string, o *updateOpts) error {
	changes := 0
	cmd.LocalFlags().VisitAll(func(fl *pflag.Flag) {
		if fl.Changed && fl.Name != "detach" {
			changes++
		}
	})
	if changes == 0 {
		return fmt.Errorf("nothing to update: give at least one change, such as --image or --env-add\nSee '%s --help'.", cmd.CommandPath())
	}
	if err := o.auth.read(c.in); err != nil {
		return err
	}
	svc, err := c.modifyService(cmd.Context(), ref, func(s *api.ServiceSpec) error { return o.apply(cmd.Flags(), s) },
		func(req *api.UpdateServiceRequest) error { return o.auth.applyTo(cmd.Context(), req) })
	if err != nil {
		return err
	}
	name := svc.GetSpec().GetName()
	fmt.Fprintln(c.out, name)
	if o.detach {
		return nil
	}
	return c.waitForService(cmd, svc.GetId(), name, c.out)
}

func (o *updateOpts) apply(f *pflag.FlagSet, s *api.ServiceSpec) error {
	if s.Task == nil {
		s.Task = &api.TaskSpec{}
	}
	if s.Task.Container == nil {
		s.Task.Container = &api.ContainerSpec{}
	}
	ctr := s.Task.Container
	if f.Changed("image") {
		ctr.Image = o.image
	}
	if f.Changed("args") {
		ctr.Args = strings.Fields(o.args)
	}
	for _, key := range o.envRm {
		ctr.Env = removeEnv(ctr.Env, key)
	}
	for _, kv := range o.envAdd {
		if err := spec.ValidateEnv(kv); err != nil {
			return fmt.Errorf("--env-add: %w", err)
		}
		key, _, _ := strings.Cut(kv, "=")
		ctr.Env = append(removeEnv(ctr.Env, key), kv)
	}
	if f.Changed("replicas") {
		if err := setReplicas(s, o.replicas); err != nil {
			return err
		}
	}
	if err := o.applyPorts(s); err != nil {
		return err
	}
	var err error
	if ctr.Healthcheck, err = o.health.apply(f, ctr.GetHealthcheck()); err != nil {
		return err
	}
	if err := o.logs.apply(f, ctr); err != nil {
		return err
	}
	return o.resources.apply(f, s.Task)
}

// applyPorts removes, then adds, published ports.
func (o *updateOpts) applyPorts(s *api.ServiceSpec) error {
	if len(o.publishRm) == 0 && len(o.publishAdd) == 0 {
		return nil
	}
	if s.Endpoint == nil {
		s.Endpoint = &api.EndpointSpec{}
	}
	for _, v := range o.publishRm {
		key := v
		if !strings.Contains(key, "/") {
			key += "/tcp"
		}
		n := len(s.Endpoint.Ports)
		s.Endpoint.Ports = slices.DeleteFunc(s.Endpoint.Ports, func(p *api.PortConfig) bool { return spec.PortKey(p) == key })
		if len(s.Endpoint.Ports) == n {
			return fmt.Errorf("--publish-rm %s: the service does not publish %s", v, key)
		}
	}
	for _, v := range o.publishAdd {
		p, err := spec.ParsePublish(v)
		if err != nil {
			return fmt.Errorf("--publish-add: %w", err)
		}
		s.Endpoint.Ports = slices.DeleteFunc(s.Endpoint.Ports, func(q *api.PortConfig) bool { return spec.PortKey(q) == spec.PortKey(p) })
		s.Endpoint.Ports = append(s.Endpoint.Ports, p)
	}
	return nil
}

// removeEnv drops the entries for key ("KEY=..." or a bare "KEY").
func removeEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k != key {
			out = append(out, e)
		}
	}
	return out
}

func setReplicas(s *api.ServiceSpec, n uint64) error {
	if s.GetGlobal() != nil {
		return fmt.Errorf("service %s is global: it runs one task per node and cannot be scaled", s.GetName())
	}
	s.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: n}}
	return nil
}

// modifyService reads a service, changes its spec and writes it back based
// on the version read; if another writer got there in between, it reads
// and changes it once more. complete, if given, adds to the request what
// is no part of the spec (registry credentials).
func (c *cli) modifyService(ctx context.Context, ref string, change func(*api.ServiceSpec) error, complete ...func(*api.UpdateServiceRequest) error) (*api.Service, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		got, err := cl.GetService(ctx, &api.GetServiceRequest{Service: ref})
		if err != nil {
			return nil, err
		}
		svc := got.GetService()
		s := svc.GetSpec()
		if err := change(s); err != nil {
			return nil, err
		}
		if err := spec.ValidateServiceSpec(s); err != nil {
			return nil, err
		}
		req := &api.UpdateServiceRequest{Service: svc.GetId(), ServiceVersion: svc.GetMeta().GetVersion(), Spec: s}
		for _, f := range complete {
			if err := f(req); err != nil {
				return nil, err
			}
		}
		resp, err := cl.UpdateService(ctx, req)
		if client.Code(err) == codes.FailedPrecondition && attempt == 0 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return resp.GetService(), nil
	}
}

func newServiceScaleCmd(c *cli) *cobra.Command {
	var detach bool
	cmd := &cobra.Command{
		Use:   "scale SERVICE=REPLICAS [SERVICE=REPLICAS...]",
		Short: "Set the number of tasks of services, and wait until they run",
		Args:  args(1, -1, "SERVICE=REPLICAS..."),
		RunE:  func(cmd *cobra.Command, a []string) error { return c.scale(cmd, a, detach) },
	}
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return at once instead of waiting for the services to converge")
	return cmd
}

type scaleTarget struct {
	ref      string
	replicas uint64
}

// parseScale reads SERVICE=N pairs, or the two words "SERVICE N".
func parseScale(a []string) ([]scaleTarget, error) {
	if len(a) == 2 && !strings.Contains(a[0], "=") && !strings.Contains(a[1], "=") {
		a = []string{a[0] + "=" + a[1]}
	}
	var out []scaleTarget
	for _, s := range a {
		ref, n, ok := strings.Cut(s, "=")
		v, err := strconv.ParseUint(n, 10, 64)
		if !ok || ref == "" || err != nil {
			return nil, fmt.Errorf("invalid scale %q: write SERVICE=REPLICAS, such as web=3", s)
		}
		out = append(out, scaleTarget{ref: ref, replicas: v})
	}
	return out, nil
}

func (c *cli) scale(cmd *cobra.Command, a []string, detach bool) error {
	targets, err := parseScale(a)
	if err != nil {
		return err
	}
	var errs []error
	var scaled []*api.Service
	for _, t := range targets {
		svc, err := c.modifyService(cmd.Context(), t.ref, func(s *api.ServiceSpec) error { return setReplicas(s, t.replicas) })
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(c.out, "%s scaled to %d\n", svc.GetSpec().GetName(), t.replicas)
		scaled = append(scaled, svc)
	}
	for _, svc := range scaled {
		if detach {
			break
		}
		if err := c.waitForService(cmd, svc.GetId(), svc.GetSpec().GetName(), c.out); err != nil {
			var ee *exitError
			if errors.As(err, &ee) {
				return err // interrupted: stop waiting for the rest too
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
