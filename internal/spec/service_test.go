package spec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/warren-project/warren/api"
)

func TestValidateServiceName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string
	}{
		{"web", ""},
		{"a", ""},
		{"Web_1.prod-2", ""},
		{"9lives", ""},
		{strings.Repeat("a", 63), ""},
		{"", "a service name is required"},
		{"Foo Bar", `invalid service name "Foo Bar": use letters, digits, '-', '_' or '.', starting with a letter or digit, at most 63 characters`},
		{"-web", "invalid service name"},
		{".web", "invalid service name"},
		{"web/1", "invalid service name"},
		{"wéb", "invalid service name"},
		{strings.Repeat("a", 64), "invalid service name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateServiceName(tt.name)
			checkErr(t, err, tt.wantErr)
		})
	}
}

func validSpec() *api.ServiceSpec {
	return &api.ServiceSpec{
		Name: "web",
		Mode: &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 3}},
		Task: &api.TaskSpec{
			Container: &api.ContainerSpec{Image: "nginx:1.27", Env: []string{"A=1", "B="}, Workdir: "/app"},
			Resources: &api.ResourceRequirements{
				Limits:       &api.Resources{NanoCpus: 1e9, MemoryBytes: 1 << 30},
				Reservations: &api.Resources{NanoCpus: 5e8, MemoryBytes: 1 << 29},
			},
			Restart: &api.RestartPolicy{Condition: api.RestartPolicy_CONDITION_ON_FAILURE, Delay: durationpb.New(time.Second)},
		},
	}
}

func TestValidateServiceSpec(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*api.ServiceSpec)
		wantErr string
	}{
		{"valid", func(*api.ServiceSpec) {}, ""},
		{"minimal", func(s *api.ServiceSpec) {
			s.Task = &api.TaskSpec{Container: &api.ContainerSpec{Image: "busybox"}}
			s.Mode = nil
		}, ""},
		{"global", func(s *api.ServiceSpec) { s.Mode = &api.ServiceSpec_Global{Global: &api.GlobalService{}} }, ""},
		{"zero replicas", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 0 }, ""},
		{"limit only", func(s *api.ServiceSpec) { s.Task.Resources.Reservations = nil }, ""},
		{"reservation only", func(s *api.ServiceSpec) { s.Task.Resources.Limits = nil }, ""},
		{"bad name", func(s *api.ServiceSpec) { s.Name = "Foo Bar" }, `invalid service name "Foo Bar"`},
		{"no task", func(s *api.ServiceSpec) { s.Task = nil }, "an image is required"},
		{"no image", func(s *api.ServiceSpec) { s.Task.Container.Image = "" }, "an image is required"},
		{"bad image", func(s *api.ServiceSpec) { s.Task.Container.Image = "Nginx:1" }, `invalid image "Nginx:1"`},
		{"too many replicas", func(s *api.ServiceSpec) { s.GetReplicated().Replicas = 10001 }, "10001 replicas is too many"},
		{"env without =", func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"A=1", "B"} }, `invalid environment variable "B": write it as KEY=VALUE`},
		{"env empty key", func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"=x"} }, "the name before '=' is empty"},
		{"env space in key", func(s *api.ServiceSpec) { s.Task.Container.Env = []string{"A B=x"} }, "must not contain spaces"},
		{"relative workdir", func(s *api.ServiceSpec) { s.Task.Container.Workdir = "app" }, "must be an absolute path"},
		{"empty label key", func(s *api.ServiceSpec) { s.Labels = map[string]string{"": "x"} }, "invalid label: its key is empty"},
		{"empty container label key", func(s *api.ServiceSpec) { s.Task.Container.Labels = map[string]string{" ": "x"} }, "invalid container label"},
		{"negative cpu limit", func(s *api.ServiceSpec) { s.Task.Resources.Limits.NanoCpus = -1 }, "the CPU limit is negative"},
		{"negative memory reservation", func(s *api.ServiceSpec) { s.Task.Resources.Reservations.MemoryBytes = -5 }, "the memory reservation is negative"},
		{"cpu reservation above limit", func(s *api.ServiceSpec) { s.Task.Resources.Reservations.NanoCpus = 2e9 }, "the CPU reservation (2) is more than the CPU limit (1)"},
		{"memory reservation above limit", func(s *api.ServiceSpec) { s.Task.Resources.Reservations.MemoryBytes = 2 << 30 }, "the memory reservation (2GiB) is more than the memory limit (1GiB)"},
		{"bad restart condition", func(s *api.ServiceSpec) { s.Task.Restart.Condition = 7 }, "unknown restart condition 7"},
		{"negative restart delay", func(s *api.ServiceSpec) { s.Task.Restart.Delay = durationpb.New(-time.Second) }, "the restart delay is negative"},
		{"negative restart window", func(s *api.ServiceSpec) { s.Task.Restart.Window = durationpb.New(-time.Second) }, "the restart window is negative"},
		{"malformed duration", func(s *api.ServiceSpec) { s.Task.Restart.Delay = &durationpb.Duration{Seconds: 1, Nanos: -1} }, "invalid restart delay"},
		{"negative grace", func(s *api.ServiceSpec) { s.Task.Container.StopGracePeriod = durationpb.New(-time.Second) }, "the stop grace period is negative"},
		{"negative update delay", func(s *api.ServiceSpec) { s.Update = &api.UpdateConfig{Delay: durationpb.New(-time.Second)} }, "the update delay is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.mutate(s)
			checkErr(t, ValidateServiceSpec(s), tt.wantErr)
		})
	}
	t.Run("nil", func(t *testing.T) { checkErr(t, ValidateServiceSpec(nil), "a service spec is required") })
}

func TestValidateEnv(t *testing.T) {
	checkErr(t, ValidateEnv("A=b=c"), "")
	checkErr(t, ValidateEnv("A"), "write it as KEY=VALUE")
}

func TestErrorField(t *testing.T) {
	s := validSpec()
	s.Task.Container.Env = []string{"OK=1", "bad"}
	var e *Error
	if err := ValidateServiceSpec(s); !errors.As(err, &e) || e.Field != "task.container.env[1]" {
		t.Fatalf("error %v: want an *Error with field task.container.env[1]", err)
	}
}

// checkErr wants no error when want is empty, else an ErrInvalid error of one
// line that contains want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error; want one containing %q", want)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("error %q does not match ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q is more than one line", err)
	}
}
