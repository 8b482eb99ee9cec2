//go:build tools

// Package tools pins modules the build and code generation depend on, so that
// `go mod tidy` keeps them and `make generate` installs the same plugin versions.
package tools

import (
	_ "github.com/containerd/containerd/v2/client"
	_ "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway"
	_ "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	_ "github.com/hashicorp/go-memdb"
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "go.etcd.io/bbolt"
	_ "google.golang.org/grpc"
	_ "google.golang.org/grpc/cmd/protoc-gen-go-grpc"
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
	_ "sigs.k8s.io/yaml"
)
