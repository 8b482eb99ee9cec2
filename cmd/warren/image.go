package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

// imageRow is one line of `image ls`, and what its templates see.
type imageRow struct {
	Ref, Digest, Size, Nodes string
}

func newImageCmd(c *cli) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Import and list images on the nodes", Args: cobra.NoArgs}
	var nodes []string
	var importFormat, lsFormat string
	imp := &cobra.Command{
		Use:   "import FILE|-",
		Short: "Import an image archive (OCI layout or docker save tar) into the nodes' image stores",
		Args:  args(1, 1, "FILE, or - for stdin"),
		RunE: func(cmd *cobra.Command, a []string) error {
			return c.importImage(cmd, a[0], nodes, format(importFormat))
		},
	}
	imp.Flags().StringArrayVar(&nodes, "node", nil, "import on this node only, by hostname or ID (repeatable; default: every node)")
	imp.Flags().StringVar(&importFormat, "format", "", "print the imported images as json or through a Go template")
	ls := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "List images",
		Args:    args(0, 0, "none"),
		RunE:    func(cmd *cobra.Command, _ []string) error { return c.listImages(cmd, format(lsFormat)) },
	}
	ls.Flags().StringVar(&lsFormat, "format", "", "json, or a Go template over Ref, Digest, Size, Nodes")
	cmd.AddCommand(imp, ls)
	return cmd
}

func (c *cli) importImage(cmd *cobra.Command, file string, nodes []string, f format) error {
	if err := f.check(); err != nil {
		return err
	}
	r, size, err := c.openArchive(file)
	if err != nil {
		return err
	}
	defer r.Close()
	cl, err := c.client()
	if err != nil {
		return err
	}
	ids := c.nodeIDs(cmd, nodes)
	onBytes := c.importProgress(size)
	images, err := cl.ImportImage(cmd.Context(), r, ids, onBytes)
	if onBytes != nil {
		fmt.Fprintln(c.err)
	}
	if err != nil {
		return err
	}
	l := c.imageListing(images, c.hostnames(cmd.Context()))
	if f != "" {
		return writeListing(c.out, f, l)
	}
	for _, row := range l.items {
		r := row.(imageRow)
		fmt.Fprintf(c.out, "Imported image: %s (%s, %s) on %s\n", r.Ref, r.Digest, r.Size, r.Nodes)
	}
	return nil
}

// openArchive opens FILE, or stdin for "-"; size is -1 when unknown.
func (c *cli) openArchive(file string) (io.ReadCloser, int64, error) {
	if file == "-" {
		return io.NopCloser(c.in), -1, nil
	}
	fh, err := os.Open(file)
	if err != nil {
		return nil, 0, fmt.Errorf("open the image archive: %w", err)
	}
	size := int64(-1)
	if fi, err := fh.Stat(); err == nil && fi.Mode().IsRegular() {
		size = fi.Size()
	}
	return fh, size, nil
}

// importProgress shows bytes sent on a terminal; elsewhere it is nil.
func (c *cli) importProgress(size int64) func(int64) {
	if !isTerminal(c.err) {
		return nil
	}
	return func(n int64) {
		of := ""
		if size > 0 {
			of = " of " + spec.FormatMemory(size)
		}
		fmt.Fprintf(c.err, "\r\x1b[2KImporting: %s%s", spec.FormatMemory(n), of)
	}
}

// nodeIDs turns hostnames into node IDs; anything else passes as it is
// (an ID, or a prefix the server resolves).
func (c *cli) nodeIDs(cmd *cobra.Command, nodes []string) []string {
	if len(nodes) == 0 {
		return nil
	}
	byHost := map[string]string{}
	for id, h := range c.hostnames(cmd.Context()) {
		byHost[h] = id
	}
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n
		if id, ok := byHost[n]; ok {
			out[i] = id
		}
	}
	return out
}

func (c *cli) listImages(cmd *cobra.Command, f format) error {
	if err := f.check(); err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	resp, err := cl.ListImages(cmd.Context(), &api.ListImagesRequest{})
	if err != nil {
		return err
	}
	return writeListing(c.out, f, c.imageListing(resp.GetImages(), c.hostnames(cmd.Context())))
}

func (c *cli) imageListing(images []*api.Image, hosts map[string]string) listing {
	l := listing{header: []string{"REF", "DIGEST", "SIZE", "NODES"}}
	for _, img := range images {
		var names []string
		for _, id := range img.GetNodeIds() {
			names = append(names, nodeName(hosts, id))
		}
		r := imageRow{Ref: img.GetRef(), Digest: shortDigest(img.GetDigest()), Size: spec.FormatMemory(img.GetSize()), Nodes: strings.Join(names, ",")}
		l.add(r, proto.Message(img), r.Ref, r.Digest, r.Size, r.Nodes)
	}
	return l
}

// shortDigest is "sha256:" and 12 hex digits.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		return shortID(d)
	}
	return algo + ":" + shortID(hex)
}
