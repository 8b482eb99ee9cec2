// Package version holds the build's version, set by the linker (see Makefile).
package version

import "runtime"

var (
	// Version is the release, or `git describe` of the build.
	Version = "dev"
	// GitCommit is the commit the binary was built from.
	GitCommit = "unknown"
)

// APIVersion is the version of the gRPC API the binary speaks.
const APIVersion = "v1"

// GoVersion is the Go toolchain the binary was built with.
func GoVersion() string { return runtime.Version() }
