package state

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/warren-project/warren/api"
)

// applyAction applies one action to a write transaction. It is the single
// place that decides what a change does, used both by the Raft FSM and when a
// proposer stages its changes, so both see the same validation.
//
// index is the Raft index being applied; stored objects get it as their
// version. Actions of one command do not conflict with each other: an object
// already changed at this index accepts a later action of the same command.
func applyAction(txn *memdb.Txn, a *api.StoreAction, index uint64, now time.Time) error {
	switch t := a.GetTarget().(type) {
	case *api.StoreAction_Cluster:
		return applyObject(txn, tableCluster, a.GetKind(), t.Cluster, index, now)
	case *api.StoreAction_Node:
		return applyObject(txn, tableNode, a.GetKind(), t.Node, index, now)
	case *api.StoreAction_Service:
		return applyObject(txn, tableService, a.GetKind(), t.Service, index, now)
	case *api.StoreAction_Task:
		if a.GetKind() == api.StoreAction_KIND_UPDATE_STATUS {
			return applyTaskStatus(txn, t.Task, index, now)
		}
		return applyObject(txn, tableTask, a.GetKind(), t.Task, index, now)
	default:
		return fmt.Errorf("%w: no target", ErrInvalid)
	}
}

// object is what every stored type has in common.
type object interface {
	proto.Message
	GetId() string
	GetMeta() *api.Meta
}

func applyObject[T object](txn *memdb.Txn, table string, kind api.StoreAction_Kind, in T, index uint64, now time.Time) error {
	id := in.GetId()
	if id == "" {
		return fmt.Errorf("%w: %s without an ID", ErrInvalid, table)
	}
	raw, err := txn.First(table, indexID, id)
	if err != nil {
		return err
	}
	switch kind {
	case api.StoreAction_KIND_DELETE:
		if raw == nil {
			return nil
		}
		return txn.Delete(table, raw)
	case api.StoreAction_KIND_CREATE:
		if raw != nil {
			return fmt.Errorf("%s %s: %w", table, id, ErrAlreadyExists)
		}
	case api.StoreAction_KIND_UPDATE:
		if raw == nil {
			return fmt.Errorf("%s %s: %w", table, id, ErrNotFound)
		}
	default:
		return fmt.Errorf("%w: kind %v for %s", ErrInvalid, kind, table)
	}

	obj := proto.Clone(in).(T)
	meta := obj.GetMeta()
	if meta == nil {
		return fmt.Errorf("%w: %s %s without meta", ErrInvalid, table, id)
	}
	if err := checkName(txn, table, obj); err != nil {
		return err
	}
	if t, ok := any(obj).(*api.Task); ok && t.GetRegistryAuth() != nil {
		// Credentials travel only to the node running the task.
		return fmt.Errorf("%w: task %s carries registry credentials, which are never stored", ErrInvalid, id)
	}
	if kind == api.StoreAction_KIND_UPDATE {
		stored := raw.(T)
		have := stored.GetMeta().GetVersion()
		if meta.GetVersion() != have && have != index {
			return fmt.Errorf("%s %s (version %d, now %d): %w", table, id, meta.GetVersion(), have, ErrVersionConflict)
		}
		meta.CreatedAt = stored.GetMeta().GetCreatedAt()
		if task, ok := any(obj).(*api.Task); ok {
			// The node owns a task's status: a manager's update never moves it back.
			if old := any(stored).(*api.Task).GetStatus(); StatusLess(task.GetStatus(), old) {
				task.Status = old
			}
		}
	} else {
		meta.CreatedAt = timestamppb.New(now)
	}
	meta.Version = index
	meta.UpdatedAt = timestamppb.New(now)
	return txn.Insert(table, obj)
}

// checkName enforces unique service names; memdb does not enforce Unique.
func checkName(txn *memdb.Txn, table string, obj object) error {
	svc, ok := obj.(*api.Service)
	if !ok || table != tableService {
		return nil
	}
	name := svc.GetSpec().GetName()
	if name == "" {
		return fmt.Errorf("%w: service without a name", ErrInvalid)
	}
	raw, err := txn.First(tableService, indexName, name)
	if err != nil {
		return err
	}
	if raw != nil && raw.(*api.Service).GetId() != svc.GetId() {
		return fmt.Errorf("service %q: %w", name, ErrNameConflict)
	}
	return nil
}

// applyTaskStatus sets a task's status if it moves forward. A report about a
// task that is gone, or an older report, changes nothing and is not an error:
// nodes report what they saw, and the store keeps the latest.
func applyTaskStatus(txn *memdb.Txn, in *api.Task, index uint64, now time.Time) error {
	raw, err := txn.First(tableTask, indexID, in.GetId())
	if err != nil || raw == nil {
		return err
	}
	stored := raw.(*api.Task)
	if StatusLess(in.GetStatus(), stored.GetStatus()) {
		return nil
	}
	task := proto.Clone(stored).(*api.Task)
	task.Status = proto.Clone(in.GetStatus()).(*api.TaskStatus)
	task.Meta.Version = index
	task.Meta.UpdatedAt = timestamppb.New(now)
	return txn.Insert(tableTask, task)
}

// StatusLess orders task statuses by (restart_count, state): a restart in
// place starts a new round, so its STARTING is later than the last RUNNING.
func StatusLess(a, b *api.TaskStatus) bool {
	if a.GetRestartCount() != b.GetRestartCount() {
		return a.GetRestartCount() < b.GetRestartCount()
	}
	return a.GetState() < b.GetState()
}
