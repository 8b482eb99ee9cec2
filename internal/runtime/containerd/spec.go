package containerd

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/warren-project/warren/internal/runtime"
)

// cfsPeriod is the CFS period, in microseconds, CPU limits are expressed in.
const cfsPeriod = 100_000

// processArgs composes the process arguments as Docker does: Command
// replaces the image entrypoint and drops the image cmd; Args replaces the
// cmd.
func processArgs(img ocispec.ImageConfig, spec runtime.Spec) ([]string, error) {
	entry, cmd := img.Entrypoint, img.Cmd
	if len(spec.Command) > 0 {
		entry, cmd = spec.Command, nil
	}
	if len(spec.Args) > 0 {
		cmd = spec.Args
	}
	args := append(slices.Clone(entry), cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("container %s: no command: the image has no entrypoint or cmd and the spec sets none: %w", spec.ID, runtime.ErrInvalidArgument)
	}
	return args, nil
}

// cpuQuota converts a limit in 1e-9 CPUs to a CFS quota over cfsPeriod
// (at least the kernel's minimum of 1 ms).
func cpuQuota(nanoCPUs int64) int64 {
	return max(nanoCPUs*cfsPeriod/1e9, 1000)
}

// specOpts returns the OCI spec options of a container made from an image
// whose config is img.
func specOpts(image oci.Image, img ocispec.ImageConfig, spec runtime.Spec) ([]oci.SpecOpts, error) {
	args, err := processArgs(img, spec)
	if err != nil {
		return nil, err
	}
	for _, kv := range spec.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, fmt.Errorf("container %s: env %q is not KEY=VALUE: %w", spec.ID, kv, runtime.ErrInvalidArgument)
		}
	}
	if spec.NanoCPUs < 0 || spec.MemoryBytes < 0 {
		return nil, fmt.Errorf("container %s: negative resource limit: %w", spec.ID, runtime.ErrInvalidArgument)
	}
	opts := []oci.SpecOpts{
		oci.WithImageConfig(image),
		oci.WithProcessArgs(args...),
		oci.WithEnv(spec.Env),
	}
	opts = append(opts, networkOpts(spec.Network)...)
	if spec.WorkDir != "" {
		opts = append(opts, oci.WithProcessCwd(spec.WorkDir))
	}
	if spec.User != "" {
		opts = append(opts, withUser(spec.User))
	}
	if spec.NanoCPUs > 0 {
		opts = append(opts, oci.WithCPUCFS(cpuQuota(spec.NanoCPUs), cfsPeriod))
	}
	if spec.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(spec.MemoryBytes)))
	}
	return opts, nil
}

// withUser sets the user as oci.WithImageConfig does for an image user: the
// uid and gid from the image's /etc/passwd and /etc/group, and the user's
// supplementary groups.
func withUser(user string) oci.SpecOpts {
	return func(ctx context.Context, c oci.Client, ctr *containers.Container, s *oci.Spec) error {
		if err := oci.WithUser(user)(ctx, c, ctr, s); err != nil {
			return fmt.Errorf("user %q: %w", user, err)
		}
		return oci.WithAdditionalGIDs(strconv.FormatUint(uint64(s.Process.User.UID), 10))(ctx, c, ctr, s)
	}
}

// networkOpts puts the container in its prepared namespace, or in the
// host's without one.
func networkOpts(n *runtime.NetworkAttachment) []oci.SpecOpts {
	if n == nil {
		return []oci.SpecOpts{oci.WithHostNamespace(specs.NetworkNamespace), oci.WithHostHostsFile, oci.WithHostResolvconf}
	}
	bind := func(src, dst string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "ro"}}
	}
	return []oci.SpecOpts{
		oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: n.NetNSPath}),
		oci.WithHostname(n.HostName),
		oci.WithMounts([]specs.Mount{
			bind(n.ResolvConf, "/etc/resolv.conf"),
			bind(n.Hosts, "/etc/hosts"),
			bind(n.Hostname, "/etc/hostname"),
		}),
	}
}
