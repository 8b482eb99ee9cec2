package main

import (
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/version"
)

// versionInfo is one side of `warren version`.
type versionInfo struct {
	Version    string `json:"version"`
	APIVersion string `json:"api_version"`
	GoVersion  string `json:"go_version"`
	GitCommit  string `json:"git_commit"`
	OS         string `json:"os,omitempty"`
	Arch       string `json:"arch,omitempty"`
}

// versions is what `warren version` prints; Server is nil when the manager
// could not be asked.
type versions struct {
	Client versionInfo  `json:"client"`
	Server *versionInfo `json:"server,omitempty"`
}

func newVersionCmd(c *cli) *cobra.Command {
	var f string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the client's and the manager's versions",
		Args:  args(0, 0, "none"),
		RunE:  func(cmd *cobra.Command, _ []string) error { return c.version(cmd, format(f)) },
	}
	cmd.Flags().StringVar(&f, "format", "", "json, or a Go template over Client and Server (Version, APIVersion, GoVersion, GitCommit, OS, Arch)")
	return cmd
}

func (c *cli) version(cmd *cobra.Command, f format) error {
	if err := f.check(); err != nil {
		return err
	}
	v := versions{Client: versionInfo{
		Version: version.Version, APIVersion: version.APIVersion, GoVersion: version.GoVersion(),
		GitCommit: version.GitCommit, OS: runtime.GOOS, Arch: runtime.GOARCH,
	}}
	resp, serverErr := c.serverVersion(cmd)
	if serverErr == nil {
		v.Server = &versionInfo{Version: resp.GetVersion(), APIVersion: resp.GetApiVersion(), GoVersion: resp.GetGoVersion(), GitCommit: resp.GetGitCommit()}
	}
	var err error
	switch {
	case f == "json":
		err = writeJSON(c.out, v)
	case f.isTemplate():
		err = writeTemplate(c.out, f, []any{v})
	default:
		err = c.writeVersions(v)
	}
	if serverErr != nil {
		return serverErr // after the client's part, which is known anyway
	}
	return err
}

func (c *cli) serverVersion(cmd *cobra.Command) (*api.GetVersionResponse, error) {
	cl, err := c.client()
	if err != nil {
		return nil, err
	}
	return cl.GetVersion(cmd.Context(), &api.GetVersionRequest{})
}

func (c *cli) writeVersions(v versions) error {
	tw := tabwriter.NewWriter(c.out, 0, 4, 1, ' ', 0)
	side := func(title string, i *versionInfo) {
		fmt.Fprintf(tw, "%s:\n", title)
		fmt.Fprintf(tw, " Version:\t%s\n API version:\t%s\n Go version:\t%s\n Git commit:\t%s\n", i.Version, i.APIVersion, i.GoVersion, i.GitCommit)
		if i.OS != "" {
			fmt.Fprintf(tw, " OS/Arch:\t%s/%s\n", i.OS, i.Arch)
		}
	}
	side("Client", &v.Client)
	if v.Server != nil {
		fmt.Fprintln(tw)
		side("Server", v.Server)
	}
	return tw.Flush()
}
