package apiserver

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/ids"
	"github.com/warren-project/warren/internal/manager/allocator"
	"github.com/warren-project/warren/internal/manager/scheduler"
	"github.com/warren-project/warren/internal/spec"
	"github.com/warren-project/warren/internal/state"
)

// CreateService validates the spec, checks that its image can be had (with
// the request's registry credentials, if any), and stores the service with
// its credentials sealed; the orchestrator makes its tasks.
func (s *Server) CreateService(ctx context.Context, req *api.CreateServiceRequest) (*api.CreateServiceResponse, error) {
	sp := req.GetSpec()
	if sp == nil {
		return nil, toStatus(invalid("no service spec given"))
	}
	sp = proto.Clone(sp).(*api.ServiceSpec)
	if err := s.prepareSpec(sp); err != nil {
		return nil, toStatus(err)
	}
	svc := &api.Service{Id: ids.New(), Meta: &api.Meta{}, Spec: sp, SpecVersion: 1}
	ref := sp.GetTask().GetContainer().GetImage()
	var auth *api.RegistryAuth
	if req.GetRegistryAuth() != nil {
		var err error
		if auth, err = checkRegistryAuth(req.GetRegistryAuth(), ref); err != nil {
			return nil, toStatus(err)
		}
		if svc.SealedRegistryAuth, err = s.sealRegistryAuth(auth, svc.Id); err != nil {
			return nil, toStatus(err)
		}
	}
	if err := s.checkImage(ctx, ref, auth); err != nil {
		return nil, toStatus(err)
	}
	err := s.cfg.Store.Update(ctx, func(tx state.Tx) error {
		if err := allocator.ServiceEndpoint(tx, svc); err != nil {
			return err
		}
		return tx.Create(svc)
	})
	if err != nil {
		return nil, toStatus(fmt.Errorf("cannot create service %q: %w", sp.GetName(), err))
	}
	var created *api.Service
	s.cfg.Store.View(func(tx state.ReadTx) { created = tx.GetService(svc.Id) })
	s.log.Info("service created", "service.id", svc.Id, "service.name", sp.GetName(), "registry_auth", auth != nil)
	return &api.CreateServiceResponse{Service: withoutSecrets(created)}, nil
}

// prepareSpec fills defaults, validates, and normalizes the image reference.
func (s *Server) prepareSpec(sp *api.ServiceSpec) error {
	withDefaults(sp)
	if err := spec.ValidateServiceSpec(sp); err != nil {
		return invalidArgument{err}
	}
	if _, err := scheduler.ParseConstraints(sp.GetTask().GetPlacement().GetConstraints()); err != nil {
		return invalidArgument{err}
	}
	c := sp.GetTask().GetContainer()
	ref, err := s.cfg.Images.NormalizeRef(c.GetImage())
	if err != nil {
		return invalidArgument{err}
	}
	c.Image = ref
	return nil
}

// withDefaults fills what a spec may leave out.
func withDefaults(sp *api.ServiceSpec) {
	if sp.GetMode() == nil {
		sp.Mode = &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 1}}
	}
	if sp.Task == nil {
		sp.Task = &api.TaskSpec{}
	}
	if sp.Task.Container == nil {
		sp.Task.Container = &api.ContainerSpec{}
	}
	// A host-mode port binds on the task's node: two tasks of the service
	// cannot share a node (Swarm's rule too).
	for _, p := range sp.GetEndpoint().GetPorts() {
		if p.GetPublishMode() == api.PublishMode_PUBLISH_MODE_HOST {
			if sp.Task.Placement == nil {
				sp.Task.Placement = &api.Placement{}
			}
			sp.Task.Placement.MaxReplicasPerNode = 1
		}
	}
}

// GetService finds a service by ID, name or ID prefix.
func (s *Server) GetService(_ context.Context, req *api.GetServiceRequest) (*api.GetServiceResponse, error) {
	var svc *api.Service
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) { svc, err = tx.LookupService(req.GetService()) })
	if err != nil {
		return nil, toStatus(err)
	}
	return &api.GetServiceResponse{Service: withoutSecrets(svc)}, nil
}

// ListServices lists services with their running and desired task counts.
func (s *Server) ListServices(_ context.Context, req *api.ListServicesRequest) (*api.ListServicesResponse, error) {
	resp := &api.ListServicesResponse{RunningTasks: map[string]uint64{}, DesiredTasks: map[string]uint64{}}
	names := map[string]bool{}
	for _, n := range req.GetNames() {
		names[n] = true
	}
	s.cfg.Store.View(func(tx state.ReadTx) {
		for _, svc := range tx.ListServices() {
			if len(names) > 0 && !names[svc.GetSpec().GetName()] {
				continue
			}
			resp.Services = append(resp.Services, withoutSecrets(svc))
			var running, desired uint64
			for _, t := range tx.ListTasks(state.ByService(svc.GetId())) {
				if t.GetDesiredState() != api.TaskState_TASK_STATE_RUNNING {
					continue
				}
				desired++
				if t.GetStatus().GetState() == api.TaskState_TASK_STATE_RUNNING {
					running++
				}
			}
			if r := svc.GetSpec().GetReplicated(); r != nil {
				desired = r.GetReplicas()
			}
			resp.RunningTasks[svc.GetId()] = running
			resp.DesiredTasks[svc.GetId()] = desired
		}
	})
	return resp, nil
}

// UpdateService replaces a service's spec. A change of the task template
// makes a new spec version, which the orchestrator rolls out; a change of
// replicas alone does not. registry_auth replaces the service's registry
// credentials, clear_registry_auth removes them, and neither keeps them.
func (s *Server) UpdateService(ctx context.Context, req *api.UpdateServiceRequest) (*api.UpdateServiceResponse, error) {
	var cur *api.Service
	var err error
	s.cfg.Store.View(func(tx state.ReadTx) { cur, err = tx.LookupService(req.GetService()) })
	if err != nil {
		return nil, toStatus(err)
	}
	if v := req.GetServiceVersion(); v != 0 && v != cur.GetMeta().GetVersion() {
		return nil, toStatus(fmt.Errorf("service %s is at version %d, not %d: read it again and retry: %w",
			cur.GetSpec().GetName(), cur.GetMeta().GetVersion(), v, state.ErrVersionConflict))
	}
	sp := proto.Clone(req.GetSpec()).(*api.ServiceSpec)
	if sp == nil || sp.GetTask() == nil {
		return nil, toStatus(invalid("no service spec given"))
	}
	if sp.GetName() != cur.GetSpec().GetName() {
		return nil, toStatus(invalid("a service cannot be renamed (%q to %q): create a new service instead", cur.GetSpec().GetName(), sp.GetName()))
	}
	if (sp.GetGlobal() != nil) != (cur.GetSpec().GetGlobal() != nil) {
		return nil, toStatus(invalid("a service's mode (replicated or global) cannot change: create a new service instead"))
	}
	if err := s.prepareSpec(sp); err != nil {
		return nil, toStatus(err)
	}
	ref := sp.GetTask().GetContainer().GetImage()
	sealed, auth, err := s.nextRegistryAuth(req, cur, ref)
	if err != nil {
		return nil, toStatus(err)
	}
	// The image in use needs no new check, unless the credentials changed.
	if ref != cur.GetSpec().GetTask().GetContainer().GetImage() || req.GetRegistryAuth() != nil {
		if err := s.checkImage(ctx, ref, auth); err != nil {
			return nil, toStatus(err)
		}
	}
	var next *api.Service
	err = s.cfg.Store.Update(ctx, func(tx state.Tx) error {
		// The change applies to the service as it is now: managers write
		// to it too (an update's progress), and the store retries this on
		// a conflict, unless the caller pinned the version it read (an
		// error fn returns is not retried).
		latest := tx.GetService(cur.GetId())
		if latest == nil {
			return fmt.Errorf("service %s: %w", cur.GetSpec().GetName(), state.ErrNotFound)
		}
		if v := req.GetServiceVersion(); v != 0 && v != latest.GetMeta().GetVersion() {
			return fmt.Errorf("service %s is at version %d, not %d: read it again and retry: %w",
				cur.GetSpec().GetName(), latest.GetMeta().GetVersion(), v, state.ErrVersionConflict)
		}
		next = proto.Clone(latest).(*api.Service)
		if !proto.Equal(sp.GetTask(), latest.GetSpec().GetTask()) {
			next.SpecVersion++
			next.PreviousSpec = latest.GetSpec()
		}
		// Credentials are no part of the spec: a change makes no rollout.
		// The dispatcher sends the new ones with the tasks that have yet
		// to pull.
		next.Spec, next.SealedRegistryAuth = sp, sealed
		if err := allocator.ServiceEndpoint(tx, next); err != nil {
			return err
		}
		return tx.Update(next)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	s.cfg.Store.View(func(tx state.ReadTx) { next = tx.GetService(cur.GetId()) })
	return &api.UpdateServiceResponse{Service: withoutSecrets(next)}, nil
}

// RemoveService deletes a service and marks its tasks for removal in one
// write; nodes stop the containers and the orchestrator reaps the tasks.
func (s *Server) RemoveService(ctx context.Context, req *api.RemoveServiceRequest) (*api.RemoveServiceResponse, error) {
	err := s.cfg.Store.Update(ctx, func(tx state.Tx) error {
		svc, err := tx.LookupService(req.GetService())
		if err != nil {
			return err
		}
		for _, t := range tx.ListTasks(state.ByService(svc.GetId())) {
			if t.GetDesiredState() == api.TaskState_TASK_STATE_REMOVE {
				continue
			}
			t.DesiredState = api.TaskState_TASK_STATE_REMOVE
			if err := tx.Update(t); err != nil {
				return err
			}
		}
		return tx.Delete(svc)
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &api.RemoveServiceResponse{}, nil
}
