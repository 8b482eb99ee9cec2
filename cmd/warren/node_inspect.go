package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"sort"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/spec"
)

// writeNodesPretty prints nodes for a person, as `docker node inspect
// --pretty` does, a blank line between two nodes.
func (c *cli) writeNodesPretty(nodes []proto.Message) {
	for i, m := range nodes {
		if i > 0 {
			fmt.Fprintln(c.out)
		}
		c.writeNodePretty(m.(*api.Node))
	}
}

func (c *cli) writeNodePretty(n *api.Node) {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 4, 1, ' ', 0)
	line := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	// A header keeps its tab so that every value lines up in one column.
	section := func(k string) { fmt.Fprintf(tw, "%s:\t\n", k) }
	d, st := n.GetDescription(), n.GetStatus()
	line("ID", n.GetId())
	line("Hostname", d.GetHostname())
	if created := n.GetMeta().GetCreatedAt(); created != nil {
		line("Joined at", fmt.Sprintf("%s (%s)", created.AsTime().UTC().Format(time.RFC3339), lowerFirst(c.ago(created))))
	}
	line("Role", roleWord(n))
	section("Status")
	line(" State", enumName(st.GetState(), "NODE_STATE_"))
	if st.GetMessage() != "" {
		line(" Message", st.GetMessage())
	}
	line(" Availability", enumName(n.GetSpec().GetAvailability(), "NODE_AVAILABILITY_"))
	line(" Address", st.GetAddr())
	section("Platform")
	line(" Operating System", d.GetPlatform().GetOs())
	line(" Architecture", d.GetPlatform().GetArchitecture())
	section("Resources")
	line(" CPUs", spec.FormatCPU(d.GetResources().GetNanoCpus()))
	line(" Memory", spec.FormatMemory(d.GetResources().GetMemoryBytes()))
	if d.GetEngineVersion() != "" {
		line("Engine Version", d.GetEngineVersion())
	}
	if d.GetWarrenVersion() != "" {
		line("Warren Version", d.GetWarrenVersion())
	}
	writeLabels(tw, n.GetSpec().GetLabels())
	if exp := st.GetCertNotAfter(); exp != nil {
		line("Certificate expires", fmt.Sprintf("%s (%s)", exp.AsTime().UTC().Format(time.RFC3339), c.until(exp.AsTime())))
	}
	tw.Flush()
	// Section headers are padded like values; drop trailing blanks.
	fmt.Fprint(c.out, trailingBlanks.ReplaceAllString(buf.String(), "\n"))
}

var trailingBlanks = regexp.MustCompile(` +\n`)

// writeLabels lists labels sorted by key, one a line in the value column,
// or says there are none.
func writeLabels(w io.Writer, labels map[string]string) {
	if len(labels) == 0 {
		fmt.Fprintln(w, "Labels:\tnone")
		return
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		name := ""
		if i == 0 {
			name = "Labels:"
		}
		fmt.Fprintf(w, "%s\t%s=%s\n", name, k, labels[k])
	}
}

// until says how far t is: "in 3 days", or "expired 2 hours ago".
func (c *cli) until(t time.Time) string {
	d := t.Sub(c.clock())
	if d < 0 {
		return "expired " + lowerFirst(humanDuration(-d)) + " ago"
	}
	return "in " + lowerFirst(humanDuration(d))
}
