package state

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
)

// Table names of the in-memory store.
const (
	tableCluster = "cluster"
	tableNode    = "node"
	tableService = "service"
	tableTask    = "task"
)

const (
	indexID      = "id"
	indexName    = "name"
	indexService = "service"
	indexNode    = "node"
)

// stringIndex indexes an object by a string its function derives. Objects for
// which it returns "" are not indexed (memdb's AllowMissing).
type stringIndex[T proto.Message] struct {
	of func(T) string
}

func (x stringIndex[T]) FromObject(obj interface{}) (bool, []byte, error) {
	o, ok := obj.(T)
	if !ok {
		return false, nil, fmt.Errorf("state: index got %T", obj)
	}
	v := x.of(o)
	if v == "" {
		return false, nil, nil
	}
	return true, []byte(v + "\x00"), nil
}

func (x stringIndex[T]) FromArgs(args ...interface{}) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("state: index wants one argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("state: index argument must be a string, got %T", args[0])
	}
	return []byte(s + "\x00"), nil
}

// PrefixFromArgs lets `id_prefix` look-ups find objects by a short ID.
func (x stringIndex[T]) PrefixFromArgs(args ...interface{}) ([]byte, error) {
	b, err := x.FromArgs(args...)
	if err != nil {
		return nil, err
	}
	return b[:len(b)-1], nil
}

func index[T proto.Message](name string, unique bool, of func(T) string) *memdb.IndexSchema {
	return &memdb.IndexSchema{
		Name:         name,
		Unique:       unique,
		AllowMissing: name != indexID,
		Indexer:      stringIndex[T]{of: of},
	}
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		tableCluster: {Name: tableCluster, Indexes: map[string]*memdb.IndexSchema{
			indexID: index(indexID, true, (*api.Cluster).GetId),
		}},
		tableNode: {Name: tableNode, Indexes: map[string]*memdb.IndexSchema{
			indexID: index(indexID, true, (*api.Node).GetId),
		}},
		tableService: {Name: tableService, Indexes: map[string]*memdb.IndexSchema{
			indexID:   index(indexID, true, (*api.Service).GetId),
			indexName: index(indexName, true, func(s *api.Service) string { return s.GetSpec().GetName() }),
		}},
		tableTask: {Name: tableTask, Indexes: map[string]*memdb.IndexSchema{
			indexID:      index(indexID, true, (*api.Task).GetId),
			indexService: index(indexService, false, (*api.Task).GetServiceId),
			indexNode:    index(indexNode, false, (*api.Task).GetNodeId),
		}},
	}}
}
