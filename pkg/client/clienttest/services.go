package clienttest

import (
	"context"
	"sort"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

// CreateService validates the spec as the real server does, stores the
// service and makes its tasks (state NEW).
func (f *Fake) CreateService(_ context.Context, req *api.CreateServiceRequest) (*api.CreateServiceResponse, error) {
	if err := spec.ValidateServiceSpec(req.GetSpec()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.services {
		if s.GetSpec().GetName() == req.GetSpec().GetName() {
			return nil, status.Errorf(codes.AlreadyExists, "a service named %s already exists", s.GetSpec().GetName())
		}
	}
	svc := &api.Service{Id: f.newID("service"), Meta: f.meta(f.bump()), Spec: proto.Clone(req.GetSpec()).(*api.ServiceSpec), SpecVersion: 1}
	f.services[svc.GetId()] = svc
	f.reconcile(svc)
	return &api.CreateServiceResponse{Service: proto.Clone(svc).(*api.Service)}, nil
}

// GetService resolves an ID, a unique ID prefix or a name.
func (f *Fake) GetService(_ context.Context, req *api.GetServiceRequest) (*api.GetServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	svc, err := f.resolveService(req.GetService())
	if err != nil {
		return nil, err
	}
	return &api.GetServiceResponse{Service: proto.Clone(svc).(*api.Service)}, nil
}

// ListServices lists services by name, with task counts.
func (f *Fake) ListServices(_ context.Context, req *api.ListServicesRequest) (*api.ListServicesResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	resp := &api.ListServicesResponse{RunningTasks: map[string]uint64{}, DesiredTasks: map[string]uint64{}}
	for _, s := range f.services {
		if len(req.GetNames()) > 0 && !contains(req.GetNames(), s.GetSpec().GetName()) {
			continue
		}
		resp.Services = append(resp.Services, proto.Clone(s).(*api.Service))
		running, desired := f.counts(s)
		resp.RunningTasks[s.GetId()], resp.DesiredTasks[s.GetId()] = running, desired
	}
	sort.Slice(resp.Services, func(i, j int) bool {
		return resp.Services[i].GetSpec().GetName() < resp.Services[j].GetSpec().GetName()
	})
	return resp, nil
}

func (f *Fake) counts(s *api.Service) (running, desired uint64) {
	for _, t := range f.tasks {
		if t.GetServiceId() != s.GetId() || t.GetDesiredState() != api.TaskState_TASK_STATE_RUNNING {
			continue
		}
		if s.GetSpec().GetGlobal() != nil {
			desired++
		}
		if t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
			running++
		}
	}
	if r := s.GetSpec().GetReplicated(); r != nil {
		desired = r.GetReplicas()
	}
	return running, desired
}

// UpdateService replaces the spec, checking service_version when set.
func (f *Fake) UpdateService(_ context.Context, req *api.UpdateServiceRequest) (*api.UpdateServiceResponse, error) {
	if err := spec.ValidateServiceSpec(req.GetSpec()); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	svc, err := f.resolveService(req.GetService())
	if err != nil {
		return nil, err
	}
	if f.updateConflicts > 0 {
		f.updateConflicts--
		svc.Meta.Version = f.bump() // as if another writer had changed it
		return nil, status.Errorf(codes.FailedPrecondition, "service %s changed since it was read: read it again and retry", svc.GetSpec().GetName())
	}
	if v := req.GetServiceVersion(); v != 0 && v != svc.GetMeta().GetVersion() {
		return nil, status.Errorf(codes.FailedPrecondition, "service %s changed since it was read (version %d, not %d): read it again and retry", svc.GetSpec().GetName(), svc.GetMeta().GetVersion(), v)
	}
	svc.PreviousSpec = svc.Spec
	svc.Spec = proto.Clone(req.GetSpec()).(*api.ServiceSpec)
	svc.SpecVersion++
	svc.Meta.Version = f.bump()
	svc.Meta.UpdatedAt = f.now()
	f.reconcile(svc)
	return &api.UpdateServiceResponse{Service: proto.Clone(svc).(*api.Service)}, nil
}

// RemoveService deletes the service and marks its tasks for removal; the
// next Step deletes them.
func (f *Fake) RemoveService(_ context.Context, req *api.RemoveServiceRequest) (*api.RemoveServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	svc, err := f.resolveService(req.GetService())
	if err != nil {
		return nil, err
	}
	delete(f.services, svc.GetId())
	idx := f.bump()
	for _, t := range f.tasks {
		if t.GetServiceId() == svc.GetId() {
			t.DesiredState = api.TaskState_TASK_STATE_REMOVE
			t.Meta.Version = idx
		}
	}
	return &api.RemoveServiceResponse{}, nil
}

// resolveService finds a service by ID, name or unique ID prefix. The
// caller holds mu.
func (f *Fake) resolveService(ref string) (*api.Service, error) {
	if s, ok := f.services[ref]; ok {
		return s, nil
	}
	var found []*api.Service
	for _, s := range f.services {
		if s.GetSpec().GetName() == ref {
			return s, nil
		}
		if ref != "" && strings.HasPrefix(s.GetId(), ref) {
			found = append(found, s)
		}
	}
	switch len(found) {
	case 0:
		return nil, status.Errorf(codes.NotFound, "service %s not found", ref)
	case 1:
		return found[0], nil
	}
	return nil, status.Errorf(codes.InvalidArgument, "service %s is ambiguous: give more of its ID", ref)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
