package main

import (
	"context"
	"fmt"

	"github.com/warren-project/warren/api"
)

// logPrinter writes log messages as `NAME | line`, naming each task as
// Docker does: web.1.<task ID>@<node>.
type logPrinter struct {
	c     *cli
	o     *logsOpts
	hosts map[string]string // node ID → hostname
	names map[string]string // task ID → name
	width int               // of the longest name so far
	buf   []byte
}

func newLogPrinter(c *cli, o *logsOpts) *logPrinter {
	return &logPrinter{c: c, o: o, hosts: map[string]string{}, names: map[string]string{}}
}

// name remembers and returns how task t is shown.
func (p *logPrinter) name(t *api.Task) string {
	n := taskName(t)
	if !p.o.noTaskIDs {
		n += "." + shortID(t.GetId())
	}
	if t.GetNodeId() != "" {
		n += "@" + nodeName(p.hosts, t.GetNodeId())
	}
	p.names[t.GetId()] = n
	p.width = max(p.width, len(n))
	return n
}

// taskName returns the name of the task a message is about, asking the
// manager about a task it has not seen (a replacement, while following).
func (p *logPrinter) taskName(ctx context.Context, m *api.LogMessage) string {
	if n, ok := p.names[m.GetTaskId()]; ok {
		return n
	}
	cl, err := p.c.client()
	if err == nil {
		if _, known := p.hosts[m.GetNodeId()]; !known {
			p.hosts = p.c.hostnames(ctx)
		}
		if resp, err := cl.GetTask(ctx, &api.GetTaskRequest{Task: m.GetTaskId()}); err == nil {
			return p.name(resp.GetTask())
		}
	}
	n := shortID(m.GetTaskId()) + "@" + nodeName(p.hosts, m.GetNodeId())
	p.names[m.GetTaskId()] = n // asked once: a task gone meanwhile keeps its ID
	return n
}

// print writes one message: a line to stdout (stderr for the task's own
// stderr), a notice to stderr. One write per line, so that lines of a
// chatty service do not mix with other output.
func (p *logPrinter) print(ctx context.Context, m *api.LogMessage) error {
	if m.GetNotice() != "" {
		_, err := fmt.Fprintln(p.c.err, m.GetNotice())
		return err
	}
	b := p.buf[:0]
	if p.o.timestamps {
		b = m.GetTime().AsTime().UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00")
		b = append(b, ' ')
	}
	b = append(b, padRight(p.taskName(ctx, m), p.width)...)
	b = append(b, " | "...)
	b = append(b, m.GetLine()...)
	b = append(b, '\n')
	p.buf = b
	w := p.c.out
	if m.GetStream() == "stderr" {
		w = p.c.err
	}
	_, err := w.Write(b)
	return err
}
