package spec

import (
	"fmt"
	"path"
	"strings"

	"github.com/distribution/reference"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
)

// MaxReplicas bounds a replicated service: more is almost surely a typo,
// and each replica costs state on every manager.
const MaxReplicas = 10000

// ValidateServiceSpec checks what a client can check without the cluster:
// the name, the image, counts and units, and that limits and reservations
// agree. Placement constraints are left to the scheduler, which owns their
// syntax. It returns the first problem found.
func ValidateServiceSpec(s *api.ServiceSpec) error {
	if s == nil {
		return invalid("", "a service spec is required")
	}
	if err := ValidateServiceName(s.GetName()); err != nil {
		return err
	}
	if err := validateLabels("labels", "label", s.GetLabels()); err != nil {
		return err
	}
	if err := validateMode(s); err != nil {
		return err
	}
	if err := validateTask(s.GetTask()); err != nil {
		return err
	}
	if err := validateEndpoint(s); err != nil {
		return err
	}
	if d := s.GetUpdate().GetDelay(); d != nil {
		if err := validateDuration("update.delay", "update delay", d); err != nil {
			return err
		}
	}
	return nil
}

func validateMode(s *api.ServiceSpec) error {
	if r := s.GetReplicated(); r != nil && r.GetReplicas() > MaxReplicas {
		return invalid("replicated.replicas", "%d replicas is too many: a service may have at most %d", r.GetReplicas(), MaxReplicas)
	}
	return nil
}

func validateTask(t *api.TaskSpec) error {
	if err := validateContainer(t.GetContainer()); err != nil {
		return err
	}
	if err := validateResources(t.GetResources()); err != nil {
		return err
	}
	return validateRestart(t.GetRestart())
}

func validateContainer(c *api.ContainerSpec) error {
	if err := ValidateImage(c.GetImage()); err != nil {
		return err
	}
	for i, e := range c.GetEnv() {
		if err := validateEnv(e); err != nil {
			return &Error{Field: fmt.Sprintf("task.container.env[%d]", i), Msg: err.Error()}
		}
	}
	if w := c.GetWorkdir(); w != "" && !path.IsAbs(w) {
		return invalid("task.container.workdir", "invalid working directory %q: it must be an absolute path such as /app", w)
	}
	if err := validateLabels("task.container.labels", "container label", c.GetLabels()); err != nil {
		return err
	}
	if d := c.GetStopGracePeriod(); d != nil {
		if err := validateDuration("task.container.stop_grace_period", "stop grace period", d); err != nil {
			return err
		}
	}
	if d := c.GetDrainPeriod(); d != nil {
		if err := validateDuration("task.container.drain_period", "drain period", d); err != nil {
			return err
		}
	}
	if err := ValidateNetwork(c.GetNetwork()); err != nil {
		return err
	}
	return validateHealthCheck(c.GetHealthcheck())
}

// ValidateImage checks that ref is a well-formed image reference.
func ValidateImage(ref string) error {
	if ref == "" {
		return invalid("task.container.image", "an image is required: name the image to run, for example nginx:1.27")
	}
	if _, err := reference.ParseDockerRef(ref); err != nil {
		return invalid("task.container.image", "invalid image %q: %v; name an image like nginx:1.27 or registry.example.com/app@sha256:<digest>", ref, err)
	}
	return nil
}

// ValidateEnv checks one environment entry, which must be KEY=VALUE.
func ValidateEnv(entry string) error {
	if err := validateEnv(entry); err != nil {
		return invalid("task.container.env", "%s", err.Error())
	}
	return nil
}

func validateEnv(entry string) error {
	key, _, ok := strings.Cut(entry, "=")
	switch {
	case !ok:
		return fmt.Errorf("invalid environment variable %q: write it as KEY=VALUE", entry)
	case key == "":
		return fmt.Errorf("invalid environment variable %q: the name before '=' is empty; write it as KEY=VALUE", entry)
	case strings.ContainsAny(key, " \t\n\x00"):
		return fmt.Errorf("invalid environment variable %q: the name must not contain spaces; write it as KEY=VALUE", entry)
	case strings.ContainsRune(entry, 0):
		return fmt.Errorf("invalid environment variable %q: it must not contain a NUL byte", entry)
	}
	return nil
}

func validateLabels(field, what string, labels map[string]string) error {
	for k := range labels {
		if strings.TrimSpace(k) == "" {
			return invalid(field, "invalid %s: its key is empty; write it as key=value", what)
		}
	}
	return nil
}

func validateResources(r *api.ResourceRequirements) error {
	lim, res := r.GetLimits(), r.GetReservations()
	checks := []struct {
		field, what string
		v           int64
	}{
		{"task.resources.limits.nano_cpus", "CPU limit", lim.GetNanoCpus()},
		{"task.resources.limits.memory_bytes", "memory limit", lim.GetMemoryBytes()},
		{"task.resources.reservations.nano_cpus", "CPU reservation", res.GetNanoCpus()},
		{"task.resources.reservations.memory_bytes", "memory reservation", res.GetMemoryBytes()},
	}
	for _, c := range checks {
		if c.v < 0 {
			return invalid(c.field, "the %s is negative (%d): give a positive amount, or none", c.what, c.v)
		}
	}
	if l, q := lim.GetNanoCpus(), res.GetNanoCpus(); l > 0 && q > l {
		return invalid("task.resources.reservations.nano_cpus", "the CPU reservation (%s) is more than the CPU limit (%s): reserve at most the limit", FormatCPU(q), FormatCPU(l))
	}
	if l, q := lim.GetMemoryBytes(), res.GetMemoryBytes(); l > 0 && q > l {
		return invalid("task.resources.reservations.memory_bytes", "the memory reservation (%s) is more than the memory limit (%s): reserve at most the limit", FormatMemory(q), FormatMemory(l))
	}
	return nil
}

func validateRestart(p *api.RestartPolicy) error {
	if p == nil {
		return nil
	}
	if _, ok := api.RestartPolicy_Condition_name[int32(p.GetCondition())]; !ok {
		return invalid("task.restart.condition", "unknown restart condition %d: use any, on-failure or none", p.GetCondition())
	}
	if d := p.GetDelay(); d != nil {
		if err := validateDuration("task.restart.delay", "restart delay", d); err != nil {
			return err
		}
	}
	if d := p.GetWindow(); d != nil {
		return validateDuration("task.restart.window", "restart window", d)
	}
	return nil
}

func validateDuration(field, what string, d *durationpb.Duration) error {
	if err := d.CheckValid(); err != nil {
		return invalid(field, "invalid %s: %v", what, err)
	}
	if d.AsDuration() < 0 {
		return invalid(field, "the %s is negative (%s): give a duration such as 5s, or 0", what, d.AsDuration())
	}
	return nil
}
