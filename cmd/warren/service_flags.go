package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

// serviceOpts holds the flags of `service create`.
type serviceOpts struct {
	image, mode, command, workdir, user, network string
	replicas, restartMaxAttempts                 uint64
	updateParallelism, maxPerNode                uint64
	env, constraints, labels, containerLabels    []string
	publish                                      []string
	drain                                        time.Duration
	restartCondition                             string
	restartDelay, restartWindow                  time.Duration
	stopGrace, updateDelay                       time.Duration
	resources                                    resourceOpts
	health                                       healthOpts
	logs                                         logOpts
	auth                                         registryAuthOpts
	detach                                       bool
	format                                       string
}

// resourceOpts are the flags shared by create and update.
type resourceOpts struct {
	limitCPU, limitMemory, reserveCPU, reserveMemory string
}

func (o *serviceOpts) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.image, "image", "", "image to run (required)")
	f.Uint64Var(&o.replicas, "replicas", 1, "number of tasks")
	f.StringVar(&o.mode, "mode", "replicated", "replicated, or global (one task per node)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable: KEY=VALUE (repeatable)")
	f.StringVar(&o.command, "command", "", "replace the image's entrypoint; split on whitespace")
	f.StringVar(&o.workdir, "workdir", "", "working directory inside the container")
	f.StringVar(&o.user, "user", "", "user to run as: USER[:GROUP]")
	o.resources.addFlags(f)
	o.health.addFlags(f)
	o.logs.addFlags(f)
	f.StringArrayVar(&o.constraints, "constraint", nil, "placement constraint, such as node.labels.zone==a (repeatable)")
	f.StringArrayVar(&o.labels, "label", nil, "service label: key=value (repeatable)")
	f.StringArrayVar(&o.containerLabels, "container-label", nil, "container label: key=value (repeatable)")
	f.StringVar(&o.restartCondition, "restart-condition", "any", "restart when a task exits: any, on-failure or none")
	f.DurationVar(&o.restartDelay, "restart-delay", 0, "wait before the first restart; it doubles up to a cap")
	f.Uint64Var(&o.restartMaxAttempts, "restart-max-attempts", 0, "give up after this many restarts within the window (0: never)")
	f.DurationVar(&o.restartWindow, "restart-window", 0, "window over which restart attempts are counted")
	f.DurationVar(&o.stopGrace, "stop-grace-period", 0, "time between SIGTERM and SIGKILL")
	f.Uint64Var(&o.updateParallelism, "update-parallelism", 0, "tasks replaced at once in an update (0: 1)")
	f.DurationVar(&o.updateDelay, "update-delay", 0, "pause between two batches of an update")
	f.StringVar(&o.network, "network", "overlay", `"overlay" (an address, the service VIP and DNS) or "host" (share the node's network)`)
	f.StringArrayVarP(&o.publish, "publish", "p", nil, "publish a port on every node: PUBLISHED:TARGET[/udp], or mode=host,published=N,target=N[,protocol=udp] for the nodes running a task (repeatable)")
	f.DurationVar(&o.drain, "drain-period", 0, "how long a stopping task stays out of load balancing before it is signalled (default 1s)")
	f.Uint64Var(&o.maxPerNode, "max-replicas-per-node", 0, "at most this many tasks on one node (0: no limit)")
	o.auth.addFlags(f, false)
	f.BoolVarP(&o.detach, "detach", "d", false, "return at once instead of waiting for the service to converge")
	f.StringVar(&o.format, "format", "", "print the service as json or through a Go template instead of its ID")
}

func (r *resourceOpts) addFlags(f *pflag.FlagSet) {
	f.StringVar(&r.limitCPU, "limit-cpu", "", "CPU limit, such as 0.5")
	f.StringVar(&r.limitMemory, "limit-memory", "", "memory limit, such as 256M")
	f.StringVar(&r.reserveCPU, "reserve-cpu", "", "CPU reserved for scheduling, such as 0.25")
	f.StringVar(&r.reserveMemory, "reserve-memory", "", "memory reserved for scheduling, such as 128M")
}

// spec builds the service spec the flags describe.
func (o *serviceOpts) spec(f *pflag.FlagSet, name string, args []string) (*api.ServiceSpec, error) {
	s := &api.ServiceSpec{
		Name: name,
		Task: &api.TaskSpec{Container: &api.ContainerSpec{
			Image: o.image, Command: strings.Fields(o.command), Args: args, Env: o.env,
			Workdir: o.workdir, User: o.user,
		}},
	}
	if err := o.setNetwork(f, s); err != nil {
		return nil, err
	}
	if err := o.setMode(f, s); err != nil {
		return nil, err
	}
	var err error
	if s.Labels, err = parseLabels("--label", o.labels); err != nil {
		return nil, err
	}
	if s.Task.Container.Labels, err = parseLabels("--container-label", o.containerLabels); err != nil {
		return nil, err
	}
	if err := o.resources.apply(f, s.Task); err != nil {
		return nil, err
	}
	if err := o.setRestart(f, s.Task); err != nil {
		return nil, err
	}
	if s.Task.Container.Healthcheck, err = o.health.apply(f, nil); err != nil {
		return nil, err
	}
	if err := o.logs.apply(f, s.Task.Container); err != nil {
		return nil, err
	}
	if f.Changed("stop-grace-period") {
		s.Task.Container.StopGracePeriod = durationpb.New(o.stopGrace)
	}
	if len(o.constraints) > 0 || o.maxPerNode > 0 {
		s.Task.Placement = &api.Placement{Constraints: o.constraints, MaxReplicasPerNode: o.maxPerNode}
	}
	if f.Changed("update-parallelism") || f.Changed("update-delay") {
		s.Update = &api.UpdateConfig{Parallelism: o.updateParallelism}
		if f.Changed("update-delay") {
			s.Update.Delay = durationpb.New(o.updateDelay)
		}
	}
	return s, nil
}

// setNetwork sets the network mode and published ports.
func (o *serviceOpts) setNetwork(f *pflag.FlagSet, s *api.ServiceSpec) error {
	switch o.network {
	case "overlay", "":
		s.Task.Container.Network = spec.NetworkOverlay
	case spec.NetworkHost:
		s.Task.Container.Network = spec.NetworkHost
	default:
		return fmt.Errorf("invalid --network %q: use overlay or host", o.network)
	}
	for _, v := range o.publish {
		p, err := spec.ParsePublish(v)
		if err != nil {
			return err
		}
		if s.Endpoint == nil {
			s.Endpoint = &api.EndpointSpec{}
		}
		s.Endpoint.Ports = append(s.Endpoint.Ports, p)
	}
	if f.Changed("drain-period") {
		s.Task.Container.DrainPeriod = durationpb.New(o.drain)
	}
	return nil
}

func (o *serviceOpts) setMode(f *pflag.FlagSet, s *api.ServiceSpec) error {
	switch o.mode {
	case "replicated":
		s.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: o.replicas}}
	case "global":
		if f.Changed("replicas") {
			return fmt.Errorf("--replicas applies to replicated services; a global service runs one task per node")
		}
		s.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}}
	default:
		return fmt.Errorf("invalid --mode %q: use replicated or global", o.mode)
	}
	return nil
}

func (o *serviceOpts) setRestart(f *pflag.FlagSet, t *api.TaskSpec) error {
	if !f.Changed("restart-condition") && !f.Changed("restart-delay") && !f.Changed("restart-max-attempts") && !f.Changed("restart-window") {
		return nil // the server's defaults
	}
	cond, err := spec.ParseRestartCondition(o.restartCondition)
	if err != nil {
		return err
	}
	t.Restart = &api.RestartPolicy{Condition: cond, MaxAttempts: o.restartMaxAttempts}
	if f.Changed("restart-delay") {
		t.Restart.Delay = durationpb.New(o.restartDelay)
	}
	if f.Changed("restart-window") {
		t.Restart.Window = durationpb.New(o.restartWindow)
	}
	return nil
}

// apply sets the resources whose flags were given, leaving the others.
func (r *resourceOpts) apply(f *pflag.FlagSet, t *api.TaskSpec) error {
	if t.Resources == nil {
		t.Resources = &api.ResourceRequirements{}
	}
	res := t.Resources
	if res.Limits == nil {
		res.Limits = &api.Resources{}
	}
	if res.Reservations == nil {
		res.Reservations = &api.Resources{}
	}
	sets := []struct {
		flag, value string
		parse       func(string) (int64, error)
		field       *int64
	}{
		{"limit-cpu", r.limitCPU, spec.ParseCPU, &res.Limits.NanoCpus},
		{"limit-memory", r.limitMemory, spec.ParseMemory, &res.Limits.MemoryBytes},
		{"reserve-cpu", r.reserveCPU, spec.ParseCPU, &res.Reservations.NanoCpus},
		{"reserve-memory", r.reserveMemory, spec.ParseMemory, &res.Reservations.MemoryBytes},
	}
	for _, s := range sets {
		if !f.Changed(s.flag) {
			continue
		}
		v, err := s.parse(s.value)
		if err != nil {
			return fmt.Errorf("--%s: %w", s.flag, err)
		}
		*s.field = v
	}
	// Leave no empty messages behind: "no resources" reads better as unset.
	if res.Limits.GetNanoCpus() == 0 && res.Limits.GetMemoryBytes() == 0 {
		res.Limits = nil
	}
	if res.Reservations.GetNanoCpus() == 0 && res.Reservations.GetMemoryBytes() == 0 {
		res.Reservations = nil
	}
	if res.Limits == nil && res.Reservations == nil {
		t.Resources = nil
	}
	return nil
}

// parseLabels reads key=value pairs; a bare key has an empty value.
func parseLabels(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("invalid %s %q: write it as key=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}
