package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

// waitForService waits for a service to converge, drawing progress on w.
// Ctrl-C stops the wait, not the service: it exits 130 with a note.
func (c *cli) waitForService(cmd *cobra.Command, ref, name string, w io.Writer) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	v := &progressView{w: w, tty: isTerminal(w), name: name, hosts: c.hostnames(ctx), last: map[string]string{}}
	err = cl.WaitForService(ctx, ref, v.update)
	if errors.Is(err, context.Canceled) {
		return &exitError{code: 130, msg: fmt.Sprintf("service %s is still converging: see \"%s service ps %s\"", name, cmd.Root().Name(), name)}
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "verify: service %s converged\n", name)
	return err
}

// hostnames maps node IDs to hostnames, for progress and listings. It is
// best effort: a failure only makes the output show IDs.
func (c *cli) hostnames(ctx context.Context) map[string]string {
	m := map[string]string{}
	cl, err := c.client()
	if err != nil {
		return m
	}
	resp, err := cl.ListNodes(ctx, &api.ListNodesRequest{})
	if err != nil {
		return m
	}
	for _, n := range resp.GetNodes() {
		m[n.GetId()] = n.GetDescription().GetHostname()
	}
	return m
}

func nodeName(hosts map[string]string, id string) string {
	if h := hosts[id]; h != "" {
		return h
	}
	return shortID(id)
}

// progressView shows a service converging. On a terminal it redraws a
// block in place, as docker does; elsewhere (a log, a pipe) it prints one
// line per change.
type progressView struct {
	w     io.Writer
	tty   bool
	name  string
	hosts map[string]string
	drawn int               // lines of the block on screen (tty)
	last  map[string]string // last line printed per key (not tty)
}

func (v *progressView) update(p client.ServiceProgress) {
	overall := fmt.Sprintf("overall progress: %d out of %d tasks", p.Running, p.Desired)
	var failures, lines []string
	for _, f := range p.Failures {
		failures = append(failures, v.failureLine(f))
	}
	for _, s := range p.Slots {
		lines = append(lines, v.slotLine(s, p.Desired))
	}
	if v.tty {
		v.redraw(failures, append([]string{overall}, lines...))
		return
	}
	for _, f := range failures {
		fmt.Fprintln(v.w, f)
	}
	v.printChanged("overall", overall)
	for i, s := range p.Slots {
		v.printChanged(fmt.Sprint(s.Slot, s.NodeID), lines[i])
	}
}

func (v *progressView) printChanged(key, line string) {
	if v.last[key] != line {
		v.last[key] = line
		fmt.Fprintln(v.w, line)
	}
}

// redraw moves the cursor up over the previous block, prints the new
// failures where it was (they stay), then the block below them.
func (v *progressView) redraw(failures, block []string) {
	var b strings.Builder
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for _, l := range append(failures, block...) {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	// A block shorter than the last one (scale down) leaves lines below.
	for i := len(failures) + len(block); i < v.drawn; i++ {
		b.WriteString("\x1b[2K\n")
	}
	v.drawn = max(v.drawn-len(failures), len(block))
	fmt.Fprint(v.w, b.String())
}

func (v *progressView) slotLine(s client.SlotProgress, desired int) string {
	label := fmt.Sprintf("%d/%d", s.Slot, desired)
	if s.Slot == 0 {
		label = nodeName(v.hosts, s.NodeID)
	}
	line := fmt.Sprintf("%s: %s", label, stateName(s.State))
	switch {
	case s.Err != "":
		line += ": " + s.Err
	case s.Progress != "" && s.State < api.TaskState_TASK_STATE_RUNNING:
		line += " (" + s.Progress + ")"
	case s.Message != "" && s.State < api.TaskState_TASK_STATE_RUNNING && s.Message != stateName(s.State):
		line += " (" + s.Message + ")"
	}
	return line
}

func (v *progressView) failureLine(f client.TaskFailure) string {
	where := ""
	if f.NodeID != "" {
		where = " on " + nodeName(v.hosts, f.NodeID)
	}
	name := v.name
	if f.Slot > 0 {
		name = fmt.Sprintf("%s.%d", v.name, f.Slot)
	}
	return fmt.Sprintf("task %s (%s) %s%s: %s", shortID(f.TaskID), name, stateName(f.State), where, f.Err)
}
