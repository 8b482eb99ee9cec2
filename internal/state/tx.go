package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// ReadTx reads a consistent snapshot. Every object it returns is a copy the
// caller may change.
type ReadTx interface {
	// Index is the Raft index the snapshot reflects.
	Index() uint64
	GetCluster() *api.Cluster
	GetNode(id string) *api.Node
	GetService(id string) *api.Service
	GetServiceByName(name string) *api.Service
	GetTask(id string) *api.Task
	ListNodes() []*api.Node
	// Count is how many nodes, services and tasks there are, with no copy.
	Count() Counts
	ListServices() []*api.Service
	ListTasks(by TaskFilter) []*api.Task
	// LookupService finds a service by ID, name or unique ID prefix.
	LookupService(ref string) (*api.Service, error)
	// LookupTask finds a task by ID or unique ID prefix.
	LookupTask(ref string) (*api.Task, error)
	// LookupNode finds a node by ID, hostname or unique ID prefix.
	LookupNode(ref string) (*api.Node, error)
}

// Tx is a write transaction. Its changes are staged, seen by later reads of
// the same Tx, and replicated when the callback returns nil.
type Tx interface {
	ReadTx
	Create(obj Object) error
	// Update stores obj; obj.meta.version must be the version it was read at.
	Update(obj Object) error
	Delete(obj Object) error
	// UpdateTaskStatus sets a task's status if it moves forward.
	UpdateTaskStatus(taskID string, status *api.TaskStatus) error
}

// Object is a stored object: *api.Cluster, *api.Node, *api.Service or *api.Task.
type Object interface {
	proto.Message
	GetId() string
	GetMeta() *api.Meta
}

// TaskFilter selects tasks through an index.
type TaskFilter struct {
	index string
	value string
}

// All selects every task.
var All = TaskFilter{index: indexID}

// ByService selects the tasks of a service.
func ByService(id string) TaskFilter { return TaskFilter{index: indexService, value: id} }

// ByNode selects the tasks assigned to a node.
func ByNode(id string) TaskFilter { return TaskFilter{index: indexNode, value: id} }

type readTx struct {
	txn   *memdb.Txn
	index uint64
}

func (tx *readTx) Index() uint64 { return tx.index }

func get[T proto.Message](txn *memdb.Txn, table, index, value string) T {
	var zero T
	raw, err := txn.First(table, index, value)
	if err != nil || raw == nil {
		return zero
	}
	return proto.Clone(raw.(T)).(T)
}

func list[T proto.Message](txn *memdb.Txn, table, index string, args ...interface{}) []T {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		return nil
	}
	var out []T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, proto.Clone(raw.(T)).(T))
	}
	return out
}

// Counts are the sizes of the main tables.
type Counts struct{ Nodes, Services, Tasks int }

func (tx *readTx) Count() Counts {
	return Counts{count(tx.txn, tableNode), count(tx.txn, tableService), count(tx.txn, tableTask)}
}

func count(txn *memdb.Txn, table string) int {
	it, err := txn.Get(table, indexID)
	if err != nil {
		return 0
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n
}

func (tx *readTx) GetCluster() *api.Cluster {
	if cs := list[*api.Cluster](tx.txn, tableCluster, indexID); len(cs) > 0 {
		return cs[0]
	}
	return nil
}

func (tx *readTx) GetNode(id string) *api.Node {
	return get[*api.Node](tx.txn, tableNode, indexID, id)
}

func (tx *readTx) GetService(id string) *api.Service {
	return get[*api.Service](tx.txn, tableService, indexID, id)
}

func (tx *readTx) GetServiceByName(name string) *api.Service {
	return get[*api.Service](tx.txn, tableService, indexName, name)
}

func (tx *readTx) GetTask(id string) *api.Task {
	return get[*api.Task](tx.txn, tableTask, indexID, id)
}

func (tx *readTx) ListNodes() []*api.Node { return list[*api.Node](tx.txn, tableNode, indexID) }

func (tx *readTx) ListServices() []*api.Service {
	return list[*api.Service](tx.txn, tableService, indexID)
}

func (tx *readTx) ListTasks(by TaskFilter) []*api.Task {
	if by.index == indexID {
		return list[*api.Task](tx.txn, tableTask, indexID)
	}
	return list[*api.Task](tx.txn, tableTask, by.index, by.value)
}

func (tx *readTx) LookupService(ref string) (*api.Service, error) {
	if s := tx.GetService(ref); s != nil {
		return s, nil
	}
	if s := tx.GetServiceByName(ref); s != nil {
		return s, nil
	}
	return byPrefix[*api.Service](tx.txn, tableService, "service", ref)
}

func (tx *readTx) LookupTask(ref string) (*api.Task, error) {
	if t := tx.GetTask(ref); t != nil {
		return t, nil
	}
	return byPrefix[*api.Task](tx.txn, tableTask, "task", ref)
}

func (tx *readTx) LookupNode(ref string) (*api.Node, error) {
	if n := tx.GetNode(ref); n != nil {
		return n, nil
	}
	var byHost []*api.Node
	for _, n := range tx.ListNodes() {
		if n.GetDescription().GetHostname() == ref {
			byHost = append(byHost, n)
		}
	}
	switch len(byHost) {
	case 1:
		return byHost[0], nil
	case 0:
		return byPrefix[*api.Node](tx.txn, tableNode, "node", ref)
	}
	return nil, fmt.Errorf("%d nodes have hostname %q: use a node ID: %w", len(byHost), ref, ErrAmbiguous)
}

func byPrefix[T Object](txn *memdb.Txn, table, what, prefix string) (T, error) {
	var zero T
	if prefix == "" {
		return zero, fmt.Errorf("%s name or ID is empty: %w", what, ErrNotFound)
	}
	found := list[T](txn, table, indexID+"_prefix", prefix)
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return zero, fmt.Errorf("%s %q: %w", what, prefix, ErrNotFound)
	}
	ids := make([]string, 0, len(found))
	for _, o := range found {
		ids = append(ids, o.GetId())
	}
	return zero, fmt.Errorf("%s ID prefix %q matches %s: give more of the ID: %w", what, prefix, strings.Join(ids, ", "), ErrAmbiguous)
}

type writeTx struct {
	readTx
	now     time.Time
	actions []*api.StoreAction
}

func (tx *writeTx) do(kind api.StoreAction_Kind, obj Object) error {
	a := &api.StoreAction{Kind: kind}
	switch o := proto.Clone(obj).(type) {
	case *api.Cluster:
		a.Target = &api.StoreAction_Cluster{Cluster: o}
	case *api.Node:
		a.Target = &api.StoreAction_Node{Node: o}
	case *api.Service:
		a.Target = &api.StoreAction_Service{Service: o}
	case *api.Task:
		a.Target = &api.StoreAction_Task{Task: o}
	default:
		return fmt.Errorf("%w: cannot store %T", ErrInvalid, obj)
	}
	if obj.GetMeta() == nil && kind != api.StoreAction_KIND_DELETE {
		return fmt.Errorf("%w: %T %s has no meta", ErrInvalid, obj, obj.GetId())
	}
	// Staged at the current index: a second change of the same object in
	// this transaction is accepted, as it will be when the command applies.
	if err := applyAction(tx.txn, a, tx.index, tx.now); err != nil {
		return err
	}
	tx.actions = append(tx.actions, a)
	return nil
}

func (tx *writeTx) Create(obj Object) error { return tx.do(api.StoreAction_KIND_CREATE, obj) }
func (tx *writeTx) Update(obj Object) error { return tx.do(api.StoreAction_KIND_UPDATE, obj) }
func (tx *writeTx) Delete(obj Object) error { return tx.do(api.StoreAction_KIND_DELETE, obj) }

func (tx *writeTx) UpdateTaskStatus(taskID string, status *api.TaskStatus) error {
	return tx.do(api.StoreAction_KIND_UPDATE_STATUS, &api.Task{Id: taskID, Meta: &api.Meta{}, Status: status})
}
